"""Mass assignment: requests that name fields the caller may not set (state, author, reviewer,
arbiter, round, slot, model version, outcome, rubric version, created_by, others' scores,
is_staff) are accepted or refused, but what they name never changes.

Each case compares the database before and after (OWASP API3, property-level authorization).
"""

from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User
from reviews.models import Arbitration, Assignment, Outcome, Review, WorkLog
from rubrics.models import Rubric, RubricRevision
from tasks import services as task_services
from tasks.models import Campaign, ModelVersion, Repository, Task, TaskSlot, Turn
from tests.reviews.helpers import review_body, score_sheet
from tests.security.calls import rolled_back
from tests.security.matrix import bodies
from tests.security.world import build_world
from tests.tasks.factories import GOOD_RATIONALE, make_task
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db


def row(model, pk) -> dict[str, Any]:
    return model.objects.filter(pk=pk).values().get()


def rows(queryset) -> list[dict[str, Any]]:
    return list(queryset.order_by("pk").values())


def accepted_or_refused(response, accepted=(200, 201, 202)):
    assert response.status_code in (*accepted, 400), (response.status_code, response.content)
    return response.json() if response.status_code in accepted else None


@pytest.fixture
def world(fake_models, monkeypatch):
    return build_world(fake_models, monkeypatch)


def test_authoring_requests_cannot_set_state_author_round_or_models(world):
    author, other = world.users["author"], world.users["author_other"]
    client = world.client("author")
    foreign_version = ModelVersion.objects.exclude(campaigns=world.campaign).first()
    extra = {
        "state": "completed",
        "author": other.pk,
        "round": 7,
        "created_by": other.pk,
        "outcome": {"preference": 3, "method": "consensus"},
        "slot": "A",
        "slots": [{"label": "A", "model_version": "anything"}],
        "model_version": getattr(foreign_version, "pk", 1),
        "author_preference": 3,
        "submitted_at": "2020-01-01T00:00:00Z",
        "source_task": world.other_draft.pk,
        "id": world.other_draft.pk,
    }

    with rolled_back():
        create = bodies(world)[("task-list", "POST")]()
        body = accepted_or_refused(
            client.post("/api/v1/tasks/", {**create, **extra}, format="json")
        )
        if body:
            task = Task.objects.get(pk=body["id"])
            assert task.pk != world.other_draft.pk
            assert (task.state, task.author_id, task.round) == ("draft", author.pk, 1)
            assert task.author_preference is None and task.submitted_at is None
            assert task.source_task_id is None
            assert set(
                TaskSlot.objects.filter(task=task).values_list("model_version", flat=True)
            ) == set(world.campaign.model_versions.values_list("pk", flat=True))
        assert row(Task, world.other_draft.pk)["author_id"] == other.pk

    with rolled_back():
        draft = world.draft
        before = row(Task, draft.pk)
        slots_before = rows(TaskSlot.objects.filter(task=draft))
        patch = {"kind": "refactor", **extra, "campaign": world.campaign.pk + 1000}
        accepted_or_refused(client.patch(f"/api/v1/tasks/{draft.pk}/", patch, format="json"))
        after = row(Task, draft.pk)
        changed = {k for k in before if before[k] != after[k]}
        assert changed <= {"kind", "updated_at"}, changed
        assert rows(TaskSlot.objects.filter(task=draft)) == slots_before

    with rolled_back():
        turns_before = rows(Turn.objects.filter(task=world.other_draft))
        response = client.post(
            f"/api/v1/tasks/{world.draft.pk}/turns/",
            {
                "prompt": "Now add a test for the empty case.",
                "index": 9,
                "task": world.other_draft.pk,
            },
            format="json",
        )
        if accepted_or_refused(response):
            assert list(world.draft.turns.values_list("index", flat=True)) == [1, 2]
        assert rows(Turn.objects.filter(task=world.other_draft)) == turns_before

    with rolled_back():
        task = make_task(campaign=world.campaign, author=author)
        task_services.task_generate(task=task, actor=author)
        generate_inline(task)
        response = client.post(
            f"/api/v1/tasks/{task.pk}/submit/",
            {"preference": 1, "rationale": GOOD_RATIONALE, **extra, "reviewer": other.pk},
            format="json",
        )
        accepted_or_refused(response)
        task.refresh_from_db()
        assert (task.state, task.round, task.author_id) == ("in_review", 1, author.pk)
        assert not Outcome.objects.filter(task=task).exists()


def test_review_requests_cannot_set_reviewer_round_slot_or_others_scores(world):
    reviewer, other = world.users["reviewer"], world.users["reviewer_other"]
    client = world.client("reviewer")
    others_before = rows(Review.objects.all())
    other_assignment_before = row(Assignment, world.other_assignment.pk)
    arb_task_rubric = world.campaign.rubric_version_id
    a_rubric_version = (
        Rubric.objects.get(slug=world.rubric_slug).versions.order_by("-number").first()
    )

    with rolled_back():
        body = review_body(world.review_task)
        for score in body["scores"]:
            score.update(reviewer=other.pk, assignment=world.other_assignment.pk, round=4)
        body.update(
            reviewer=other.pk,
            assignment=world.other_assignment.pk,
            task=world.arb_task.pk,
            round=4,
            state="submitted",
            rubric_version=a_rubric_version.pk + 100,
            slot="B",
            model_version=1,
            outcome={"preference": 3},
            reviews=[{"reviewer": other.pk, "scores": score_sheet(world.review_task, a=1, b=1)}],
            other_scores=score_sheet(world.review_task, a=1, b=1),
            submitted_at="2020-01-01T00:00:00Z",
        )
        response = client.post(
            f"/api/v1/assignments/{world.assignment.pk}/review/", body, format="json"
        )
        created = accepted_or_refused(response, accepted=(201,))
        if created:
            review = Review.objects.get(pk=created["id"])
            assert (review.reviewer_id, review.assignment_id, review.task_id, review.round) == (
                reviewer.pk,
                world.assignment.pk,
                world.review_task.pk,
                1,
            )
            assert review.rubric_version_id == arb_task_rubric
            assert {s["slot"] for s in review.scores} == {"A", "B"}
            assert all(
                set(s) == {"turn", "slot", "criterion", "score", "comment"} for s in review.scores
            )
            assert str(review.submitted_at.year) != "2020"
        assert rows(Review.objects.exclude(assignment=world.assignment)) == others_before
        assert row(Assignment, world.other_assignment.pk) == other_assignment_before

    with rolled_back():
        newcomer = User.objects.create(username="newcomer")
        newcomer.groups.set(reviewer.groups.all())
        token = Token.objects.create(user=newcomer)
        fresh = APIClient()
        fresh.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        response = fresh.post(
            "/api/v1/assignments/next/",
            {
                "campaign": world.campaign.pk,
                "reviewer": other.pk,
                "task": world.other_draft.pk,
                "slot": 1,
                "state": "submitted",
                "round": 5,
                "due_at": "2999-01-01T00:00:00Z",
            },
            format="json",
        )
        created = accepted_or_refused(response, accepted=(201,))
        assert created, response.content
        assignment = Assignment.objects.get(pk=created["id"])
        assert (assignment.reviewer_id, assignment.state, assignment.round) == (
            newcomer.pk,
            "active",
            1,
        )
        assert assignment.task_id == world.review_task.pk
        assert assignment.due_at.year < 2999


def test_arbitration_requests_cannot_set_arbiter_state_outcome_or_rubric(world):
    arbiter = world.users["arbiter"]
    client = world.client("arbiter")
    stranger = world.users["lead"]
    pk = world.arbitration.pk
    extra = {
        "arbiter": stranger.pk,
        "state": "sent_back",
        "round": 3,
        "task": world.draft.pk,
        "outcome": {"method": "consensus", "preference": 3},
        "method": "consensus",
        "rubric_version": 999,
        "created_by": stranger.pk,
        "reviews": [{"id": 1, "preference": 3}],
    }
    with rolled_back():
        accepted_or_refused(client.post(f"/api/v1/arbitrations/{pk}/claim/", extra, format="json"))
        arbitration = Arbitration.objects.get(pk=pk)
        assert (
            arbitration.arbiter_id,
            arbitration.state,
            arbitration.task_id,
            arbitration.round,
        ) == (
            arbiter.pk,
            "claimed",
            world.arb_task.pk,
            1,
        )

    with rolled_back():
        reviews_before = rows(Review.objects.filter(task=world.arb_task))
        resolve = bodies(world)[("arbitration-resolve", "POST")]()
        accepted_or_refused(
            client.post(f"/api/v1/arbitrations/{pk}/resolve/", {**resolve, **extra}, format="json")
        )
        arbitration = Arbitration.objects.get(pk=pk)
        assert (arbitration.arbiter_id, arbitration.state) == (arbiter.pk, "resolved")
        outcome = Outcome.objects.get(task=world.arb_task)
        assert outcome.method == "arbitration"
        assert outcome.rubric_version_id == world.campaign.rubric_version_id
        assert row(Task, world.draft.pk)["state"] == "draft"
        assert rows(Review.objects.filter(task=world.arb_task)) == reviews_before


def test_lead_requests_cannot_set_authorship_history_or_pay(world):
    lead, other = world.users["lead"], world.users["author_other"]
    client = world.client("lead")

    with rolled_back():
        create = bodies(world)[("campaign-list", "POST")]()
        body = accepted_or_refused(
            client.post(
                "/api/v1/campaigns/",
                {
                    **create,
                    "created_by": other.pk,
                    "rerun_of": world.campaign.pk,
                    "id": world.campaign.pk,
                },
                format="json",
            ),
            accepted=(201,),
        )
        if body:
            campaign = Campaign.objects.get(pk=body["id"])
            assert campaign.pk != world.campaign.pk
            assert (campaign.created_by_id, campaign.rerun_of_id) == (lead.pk, None)

    with rolled_back():
        body = accepted_or_refused(
            client.post(
                "/api/v1/rubrics/",
                {
                    **bodies(world)[("rubric-list", "POST")](),
                    "created_by": other.pk,
                    "current_version": 5,
                    "versions": [1, 2, 3, 4, 5],
                },
                format="json",
            ),
            accepted=(201,),
        )
        if body:
            rubric = Rubric.objects.get(slug=body["slug"])
            assert rubric.created_by_id == lead.pk
            assert list(rubric.versions.values_list("number", flat=True)) == [1]

    with rolled_back():
        rubric = Rubric.objects.get(slug=world.rubric_slug)
        newest = rubric.versions.order_by("-number").first().number
        body = accepted_or_refused(
            client.post(
                f"/api/v1/rubrics/{rubric.slug}/revisions/",
                {
                    **bodies(world)[("rubric-revision-list", "POST")](),
                    "changed_by": other.pk,
                    "from_version": 1,
                    "to_version": 42,
                    "source": {"kind": "arbitration", "arbitration": world.arbitration.pk},
                    "arbitration": world.arbitration.pk,
                    "arbitration_id": world.arbitration.pk,
                },
                format="json",
            ),
            accepted=(201,),
        )
        if body:
            revision = RubricRevision.objects.get(pk=body["id"])
            assert revision.changed_by_id == lead.pk
            assert (revision.source, revision.arbitration_id) == ("manual", None)
            assert revision.to_version.number == newest + 1

    with rolled_back():
        body = accepted_or_refused(
            client.post(
                "/api/v1/repositories/",
                {
                    **bodies(world)[("repository-list", "POST")](),
                    "active": False,
                    "id": world.repository.pk,
                },
                format="json",
            ),
            accepted=(201,),
        )
        if body:
            assert body["id"] != world.repository.pk
            assert Repository.objects.get(pk=body["id"]).active is True

    with rolled_back():
        before = row(Task, world.draft.pk)
        accepted_or_refused(
            client.post(
                f"/api/v1/tasks/{world.draft.pk}/cancel/",
                {"reason": "A duplicate.", "state": "completed", "author": lead.pk, "round": 3},
                format="json",
            )
        )
        after = row(Task, world.draft.pk)
        assert (after["state"], after["author_id"], after["round"]) == (
            "cancelled",
            before["author_id"],
            before["round"],
        )

    with rolled_back():
        entry = WorkLog.objects.filter(person=world.users["reviewer"]).first()
        before = row(WorkLog, entry.pk)
        accepted_or_refused(
            client.post(
                f"/api/v1/payouts/{entry.pk}/approve/",
                {
                    "amount_cents": 9_999_999,
                    "person": lead.pk,
                    "state": "paid",
                    "kind": "arbitration",
                },
                format="json",
            )
        )
        after = row(WorkLog, entry.pk)
        changed = {k for k in before if before[k] != after[k]}
        assert changed <= {"state", "approved_at"}, changed
        assert after["state"] == "approved"


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_me_cannot_make_anyone_staff_or_give_roles(api, make_user, method):
    user = make_user("reviewer")
    groups = set(user.groups.values_list("name", flat=True))
    response = getattr(api.as_user(user), method)(
        "/api/v1/me/",
        {"is_staff": True, "is_superuser": True, "roles": ["lead", "auditor"], "username": "root"},
        format="json",
    )
    assert response.status_code == 405
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser, user.username) == (False, False, user.username)
    assert set(user.groups.values_list("name", flat=True)) == groups
    assert api.as_user(user).get("/api/v1/me/").json()["roles"] == ["reviewer"]
