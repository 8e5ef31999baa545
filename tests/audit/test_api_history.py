"""GET /api/v1/tasks/{id}/history/: one task's whole story, in order, in a fixed number of queries."""

import pytest

from audit.models import AuditRead
from reviews.models import Arbitration
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, reviewers, score_sheet, task_in_review
from tests.tasks.factories import make_campaign

pytestmark = pytest.mark.django_db


def review_round(api, task, preferences):
    for reviewer, preference in zip(reviewers(len(preferences)), preferences, strict=True):
        client = api.as_user(reviewer)
        assignment = client.post(
            "/api/v1/assignments/next/", {"campaign": task.campaign_id}, format="json"
        ).json()
        response = client.post(
            f"/api/v1/assignments/{assignment['id']}/review/",
            review_body(task, preference=preference),
            format="json",
        )
        assert response.status_code == 201, response.json()


@pytest.fixture
def arbitrated_task(api, live_campaign):
    """In review, three disagreeing reviews, an arbitration that revises the rubric."""
    task = task_in_review(live_campaign)
    review_round(api, task, [-2, 2, -1])
    arbitration = Arbitration.objects.get(task=task)
    arbiter = api.as_user(UserFactory(roles=["arbiter"]))
    assert arbiter.post(f"/api/v1/arbitrations/{arbitration.pk}/claim/").status_code == 200
    resolved = arbiter.post(
        f"/api/v1/arbitrations/{arbitration.pk}/resolve/",
        {
            "decision": "resolve",
            "preference": -1,
            "scores": score_sheet(task),
            "rationale": "A is right.",
            "rubric_revision": {"policy": {"max_score_spread": 2}, "rationale": "Honest doubt."},
        },
        format="json",
    )
    assert resolved.status_code == 200, resolved.json()
    return task


def history(api, user, task):
    response = api.as_user(user).get(f"/api/v1/tasks/{task.pk}/history/")
    assert response.status_code == 200, response.json()
    return response.json()


def test_an_auditor_reads_the_whole_story_in_order(api, arbitrated_task):
    auditor = UserFactory(roles=["auditor"])
    entries = history(api, auditor, arbitrated_task)
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    types = {e["object_type"] for e in entries}
    assert types >= {
        "tasks.task",
        "tasks.turn",
        "tasks.taskslot",
        "tasks.candidate",
        "reviews.reviewslot",
        "reviews.assignment",
        "reviews.review",
        "reviews.arbitration",
        "reviews.outcome",
        "rubrics.rubricversion",
        "rubrics.rubricrevision",
    }
    actions = [e["action"] for e in entries]
    assert actions[0] == "rubricversion.created"  # the version pinned before the task began
    assert [a for a in actions if a.startswith(("task.", "turn."))][:2] == [
        "task.created",
        "turn.created",
    ]
    for earlier, later in [
        ("task.submitted", "review.submitted"),
        ("review.submitted", "task.escalated"),
        ("task.escalated", "arbitration.resolved"),
        ("rubric.revised", "task.resolved"),
    ]:
        assert actions.index(earlier) < actions.index(later), (earlier, later)
    # The version the campaign pinned and the one the arbitration created, both in the story.
    versions = {e["object_id"] for e in entries if e["object_type"] == "rubrics.rubricversion"}
    assert len(versions) == 2
    assert AuditRead.objects.get(reader=auditor).object_id == str(arbitrated_task.pk)


def test_the_author_reads_their_task_without_model_or_reviewer_identities(api, arbitrated_task):
    entries = history(api, arbitrated_task.author, arbitrated_task)
    types = {e["object_type"] for e in entries}
    assert {"tasks.task", "tasks.turn", "rubrics.rubricversion"} <= types
    assert not types & {
        "tasks.taskslot",
        "tasks.candidate",
        "reviews.assignment",
        "reviews.review",
        "reviews.arbitration",
    }
    other = UserFactory(roles=["author"])
    assert api.as_user(other).get(f"/api/v1/tasks/{arbitrated_task.pk}/history/").status_code == 404
    reviewer = UserFactory(roles=["reviewer"])
    assert (
        api.as_user(reviewer).get(f"/api/v1/tasks/{arbitrated_task.pk}/history/").status_code == 403
    )


def test_the_history_runs_the_same_queries_for_a_small_and_a_large_task(
    api, live_campaign, django_assert_max_num_queries
):
    auditor = UserFactory(roles=["auditor"])
    client = api.as_user(auditor)
    client.get("/api/v1/me/")
    counts = []
    for turns in (1, 3):
        campaign = make_campaign(model_versions=list(live_campaign.model_versions.all()))
        task = task_in_review(campaign, turns=turns)
        review_round(api, task, [-2, -1, -2])
        client = api.as_user(auditor)
        with django_assert_max_num_queries(10) as captured:
            entries = client.get(f"/api/v1/tasks/{task.pk}/history/").json()
        counts.append(len(captured.captured_queries))
        assert "reviews.outcome" in {e["object_type"] for e in entries}
    # token and user, roles, the task, the read's insert (with its audit context), the story
    assert counts == [5, 5]
