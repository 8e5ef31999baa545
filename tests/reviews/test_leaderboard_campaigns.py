"""Leaderboards of campaigns over more than two model versions, and across reruns."""

import pytest

from reviews import services as review_services
from tasks import services as task_services
from tasks.models import Campaign, Task
from tests.reviews.helpers import review_body, reviewers
from tests.reviews.results_helpers import judged_task, slot_models
from tests.reviews.test_api_reviews import review_round
from tests.tasks.factories import GOOD_RATIONALE, ModelVersionFactory, make_campaign
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db

A_PREFERRED = (-2, -1, -3)


@pytest.fixture
def lead(make_user):
    return make_user("lead")


@pytest.fixture
def fake_versions(fake_models, live_campaign):
    """Model versions answering from the fake server (`live_campaign` provides the key)."""

    def make(n):
        return [
            ModelVersionFactory(model=f"gpt-fake-{k}", base_url=fake_models.openai_base_url)
            for k in range(n)
        ]

    return make


def leaderboard(api, lead, campaign, **params):
    response = api.as_user(lead).get(f"/api/v1/campaigns/{campaign.pk}/leaderboard/", params)
    assert response.status_code == 200, response.json()
    return response.json()


def judge_copies(api, campaign, people):
    """Generates, submits and reviews (slot A preferred) every draft a rerun copied."""
    for task in Task.objects.filter(campaign=campaign).order_by("id"):
        task_services.task_generate(task=task, actor=task.author)
        generate_inline(task)
        task = review_services.task_submit(
            task=task, actor=task.author, preference=-1, rationale=GOOD_RATIONALE
        )
        slots = tuple(task.slots.order_by("label").values_list("label", flat=True))
        bodies = [review_body(task, preference=p, slots=slots) for p in A_PREFERRED]
        review_round(api, task, people, bodies)


def rerun(api, lead, campaign, versions):
    response = api.as_user(lead).post(
        f"/api/v1/campaigns/{campaign.pk}/rerun/",
        {"name": "Rerun", "model_versions": [v.slug for v in versions]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return Campaign.objects.get(pk=response.json()["id"])


def test_three_model_versions_are_judged_on_the_pair_each_task_showed_at_a_and_b(
    api, lead, fake_versions
):
    versions = fake_versions(3)
    campaign = make_campaign(model_versions=versions)
    people = reviewers(3)
    tasks = [judged_task(api, campaign, A_PREFERRED, people=people) for _ in range(3)]
    shown = [slot_models(task) for task in tasks]
    assert all(set(slots) == {"A", "B", "C"} for slots in shown)
    assert sorted(slots["A"] for slots in shown) == sorted(v.slug for v in versions)

    board = leaderboard(api, lead, campaign)

    rows = {row["model_version"]: row for row in board["ranking"]}
    assert board["judgments"] == 3 and board["groups"] == 1
    for version in versions:
        row = rows[version.slug]
        wins = sum(slots["A"] == version.slug for slots in shown)
        losses = sum(slots["B"] == version.slug for slots in shown)
        assert (row["wins"], row["losses"], row["ties"]) == (wins, losses, 0)
        assert row["group"] == 1 and row["rating"] is not None
        # Every answer counts in the criterion means, slot C's too: A scored 4, the others 3.
        security = row["criteria"]["security"]
        assert security["n"] == 3
        expected = [4 if slots["A"] == version.slug else 3 for slots in shown]
        assert security["mean"] == pytest.approx(sum(expected) / 3, abs=1e-4)
    pairs = {(p["model_version"], p["opponent"]): p for p in board["pairs"]}
    for slots in shown:
        assert pairs[(slots["A"], slots["B"])]["wins"] >= 1
    assert sum(p["judgments"] for p in board["pairs"]) == 2 * 3
    assert "slots A and B" in board["pairs_method"]


def test_a_family_of_reruns_ranks_together_only_model_versions_linked_by_judgments(
    api, lead, live_campaign, fake_versions
):
    people = reviewers(3)
    for _ in range(2):
        judged_task(api, live_campaign, A_PREFERRED, people=people)
    first_versions = list(live_campaign.model_versions.order_by("pk"))
    new_versions = fake_versions(2)
    second = rerun(api, lead, live_campaign, new_versions)
    judge_copies(api, second, people)

    board = leaderboard(api, lead, second, scope="family")

    assert board["campaigns"] == [live_campaign.pk, second.pk]
    assert board["judgments"] == 4 and board["groups"] == 2
    groups = {row["model_version"]: row["group"] for row in board["ranking"]}
    assert groups[first_versions[0].slug] == groups[first_versions[1].slug]
    assert groups[new_versions[0].slug] == groups[new_versions[1].slug]
    assert groups[first_versions[0].slug] != groups[new_versions[0].slug]
    assert sorted(row["rank"] for row in board["ranking"]) == [1, 1, 2, 2]
    # Same rubric version: the criterion means compare across groups.
    assert all(row["criteria"]["security"]["n"] == 2 for row in board["ranking"])
    own = leaderboard(api, lead, second)
    assert {row["model_version"] for row in own["ranking"]} == {v.slug for v in new_versions}

    # A rerun on one model version from each earlier campaign links the whole family.
    third = rerun(api, lead, second, [first_versions[0], new_versions[0]])
    judge_copies(api, third, people)
    board = leaderboard(api, lead, third, scope="family")
    assert board["campaigns"] == [live_campaign.pk, second.pk, third.pk]
    assert board["judgments"] == 6 and board["groups"] == 1
    assert sorted(row["rank"] for row in board["ranking"]) == [1, 2, 3, 4]
