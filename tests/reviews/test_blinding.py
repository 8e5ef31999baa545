"""Before a round closes, a reviewer can learn nothing of the other reviews or of the models."""

import pytest

from tests.reviews.helpers import review_body, reviewers, task_in_review

pytestmark = pytest.mark.django_db


def test_no_response_a_reviewer_can_get_reveals_other_reviews_or_models(
    api, live_campaign, fake_models
):
    task = task_in_review(live_campaign)
    first, second = reviewers(2)
    secret = {
        "rationale": "FIRST-REVIEWER-RATIONALE-7731",
        "comments": "FIRST-REVIEWER-COMMENT-7731",
    }
    own = api.as_user(first).post("/api/v1/assignments/next/").json()
    api.as_user(first).post(
        f"/api/v1/assignments/{own['id']}/review/", {**review_body(task), **secret}, format="json"
    )

    client = api.as_user(second)
    bodies = []

    def keep(response):
        bodies.append(response.content.decode())
        return response

    claimed = keep(client.post("/api/v1/assignments/next/")).json()
    url = f"/api/v1/assignments/{claimed['id']}"
    for path in (f"{url}/", "/api/v1/assignments/", "/api/v1/rubrics/code-change/", "/api/v1/me/"):
        assert keep(client.get(path)).status_code == 200
    for path in (
        f"/api/v1/tasks/{task.pk}/",
        f"/api/v1/tasks/{task.pk}/candidates/",
        f"/api/v1/tasks/{task.pk}/history/",
        "/api/v1/arbitrations/",
        "/api/v1/model-versions/",
        f"/api/v1/campaigns/{live_campaign.pk}/",
    ):
        assert keep(client.get(path)).status_code in (403, 404)
    assert keep(client.post(f"{url}/review/", review_body(task), format="json")).status_code == 201
    assert task.reviews.count() == 2  # the round (3 reviewers) is still open

    forbidden = {
        first.username,
        secret["rationale"],
        secret["comments"],
        "openai",
        "anthropic",
        fake_models.url,
    }
    for version in live_campaign.model_versions.all():
        forbidden |= {version.slug, version.model, version.base_url}
    everything = "\n".join(bodies).lower()
    assert sorted(w for w in forbidden if w.lower() in everything) == []


def test_the_authors_history_does_not_name_the_reviewers(api, live_campaign):
    from tests.reviews.test_api_reviews import review_round

    task = task_in_review(live_campaign)
    people = reviewers(3)
    review_round(api, task, people, [review_body(task, preference=-1)] * 3)
    history = api.as_user(task.author).get(f"/api/v1/tasks/{task.pk}/history/").json()
    assert "task.completed" in [e["action"] for e in history]
    actors = {e["actor"] for e in history}
    assert not actors & {p.username for p in people}
    assert task.author.username in actors
