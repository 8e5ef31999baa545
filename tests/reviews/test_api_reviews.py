"""The review pipeline through the API: three reviewers, agreement, arbitration, revision."""

from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.models import Arbitration, Assignment, Outcome, Review
from reviews.services import assignments_expire_due
from rubrics.models import RubricRevision
from tasks.models import TaskState
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, reviewers, score_sheet, task_in_review
from tests.tasks.factories import GOOD_RATIONALE, make_campaign
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db


def claim(api, reviewer, **body):
    return api.as_user(reviewer).post("/api/v1/assignments/next/", body, format="json")


def review_round(api, task, people, bodies):
    for reviewer, body in zip(people, bodies, strict=True):
        claimed = claim(api, reviewer)
        assert claimed.status_code == 201, claimed.content
        assert claimed.json()["task"]["id"] == task.pk
        response = api.as_user(reviewer).post(
            f"/api/v1/assignments/{claimed.json()['id']}/review/", body, format="json"
        )
        assert response.status_code == 201, response.json()
    task.refresh_from_db()
    return task


def test_three_agreeing_reviews_complete_the_task_by_consensus(api, live_campaign):
    task = task_in_review(live_campaign)
    people = reviewers(3)
    first = claim(api, people[0]).json()
    assert first["state"] == "active" and first["round"] == 1
    assert first["rubric"]["slug"] == "code-change" and first["rubric"]["version"] == 1
    assert [c["slot"] for c in first["task"]["turns"][0]["candidates"]] == ["A", "B"]
    assert first["review"] is None
    api.as_user(people[0]).post(
        f"/api/v1/assignments/{first['id']}/review/",
        review_body(task, preference=-2),
        format="json",
    )
    task = review_round(api, task, people[1:], [review_body(task, preference=p) for p in (-1, -3)])
    assert task.state == TaskState.COMPLETED
    outcome = Outcome.objects.get(task=task)
    assert (outcome.method, outcome.preference, outcome.rubric_version.number) == (
        "consensus",
        -2,
        1,
    )
    assert outcome.agreement["preference_signs_agree"] is True
    assert claim(api, UserFactory(roles=["reviewer"])).status_code == 204


def test_disagreement_goes_to_arbitration_and_a_resolve_revises_the_rubric(api, live_campaign):
    task = task_in_review(live_campaign)
    people = reviewers(3)
    task = review_round(api, task, people, [review_body(task, preference=p) for p in (-2, 2, -1)])
    assert task.state == TaskState.IN_ARBITRATION
    arbiter = UserFactory(roles=["arbiter"])
    client = api.as_user(arbiter)
    listed = client.get("/api/v1/arbitrations/", {"state": "open"}).json()["results"]
    assert [a["task"] for a in listed] == [task.pk]
    arbitration_id = listed[0]["id"]
    assert listed[0]["disagreement"]["preference"]["values"] == [-2, 2, -1]
    detail = client.get(f"/api/v1/arbitrations/{arbitration_id}/").json()
    assert len(detail["reviews"]) == 3 and {r["reviewer"] for r in detail["reviews"]} == {
        p.username for p in people
    }
    assert client.post(f"/api/v1/arbitrations/{arbitration_id}/claim/").json()["state"] == "claimed"
    resolved = client.post(
        f"/api/v1/arbitrations/{arbitration_id}/resolve/",
        {
            "decision": "resolve",
            "preference": -1,
            "scores": score_sheet(task),
            "rationale": "A is right; B misses the injected option.",
            "rubric_revision": {
                "policy": {"max_score_spread": 2},
                "rationale": "Reviewers differ by two points on security in good faith.",
            },
        },
        format="json",
    )
    assert resolved.status_code == 200, resolved.json()
    assert resolved.json()["state"] == "resolved"
    task.refresh_from_db()
    assert task.state == TaskState.COMPLETED
    assert Outcome.objects.get(task=task).method == "arbitration"
    revision = RubricRevision.objects.get()
    assert (revision.arbitration_id, revision.changed_by, revision.source) == (
        arbitration_id,
        arbiter,
        "arbitration",
    )
    assert revision.rationale == "Reviewers differ by two points on security in good faith."
    assert revision.created_at is not None
    log = api.get("/api/v1/rubrics/code-change/revisions/").json()["results"]
    assert log[0]["source"] == {"kind": "arbitration", "arbitration": arbitration_id}
    assert log[0]["diff"]["policy"] == {"max_score_spread": [1, 2]}


def test_request_changes_then_revise_then_a_second_round_completes(api, live_campaign):
    task = task_in_review(live_campaign)
    first_round = reviewers(3)
    bodies = [
        review_body(task, verdict="request_changes"),
        review_body(task, verdict="request_changes"),
        review_body(task),
    ]
    task = review_round(api, task, first_round, bodies)
    assert task.state == TaskState.CHANGES_REQUESTED
    author = api.as_user(task.author)
    feedback = author.get(f"/api/v1/tasks/{task.pk}/").json()["feedback"]
    assert [f["verdict"] for f in feedback] == ["request_changes", "request_changes", "approve"]
    assert "reviewer" not in feedback[0]
    assert author.post(f"/api/v1/tasks/{task.pk}/revise/").json()["round"] == 2
    author.post(
        f"/api/v1/tasks/{task.pk}/turns/",
        {"prompt": "Address the reviewers: add a regression test."},
    )
    author.post(f"/api/v1/tasks/{task.pk}/generate/")
    generate_inline(task)
    submitted = author.post(
        f"/api/v1/tasks/{task.pk}/submit/", {"preference": 1, "rationale": GOOD_RATIONALE}
    )
    assert submitted.json()["state"] == "in_review" and submitted.json()["round"] == 2
    for earlier in first_round:
        assert claim(api, earlier).status_code == 204  # never the same task twice
    task = review_round(api, task, reviewers(3), [review_body(task, preference=-1)] * 3)
    assert task.state == TaskState.COMPLETED
    assert sorted(Review.objects.filter(task=task).values_list("round", flat=True)) == [
        1,
        1,
        1,
        2,
        2,
        2,
    ]
    assert Outcome.objects.get(task=task).round == 2


def test_a_reviewer_never_gets_their_own_task_nor_more_than_the_slots(api, live_campaign):
    both = UserFactory(roles=["author", "reviewer"])
    task_in_review(live_campaign, author=both)
    assert claim(api, both).status_code == 204
    people = reviewers(4)
    assert [claim(api, p).status_code for p in people] == [201, 201, 201, 204]
    assert claim(api, people[0]).status_code == 204  # already holds this task's slot


def test_release_gives_the_slot_back_and_expiry_reopens_it(api, live_campaign):
    task_in_review(live_campaign)
    first, second, third, fourth = reviewers(4)
    held = claim(api, first).json()
    released = api.as_user(first).post(f"/api/v1/assignments/{held['id']}/release/")
    assert released.status_code == 200 and released.json()["state"] == "released"
    late = claim(api, second).json()
    claim(api, third), claim(api, fourth)
    Assignment.objects.filter(pk=late["id"]).update(due_at=timezone.now() - timedelta(minutes=1))
    assert assignments_expire_due() == 1
    assert claim(api, first).status_code == 201  # released earlier: may take it again
    response = api.as_user(second).post(
        f"/api/v1/assignments/{late['id']}/review/",
        review_body(Assignment.objects.get(pk=late["id"]).task),
        format="json",
    )
    assert response.status_code == 409
    assert "expired" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"override": {(1, "A", "security"): {"score": 9}}}, "scores", "off the scale"),
        ({"override": {(1, "A", "security"): {"criterion": "vibes"}}}, "scores", "not a criterion"),
        ({"rationale": ""}, "rationale", ""),
        ({"preference": 5}, "preference", ""),
        ({"verdict": "maybe"}, "verdict", ""),
    ],
)
def test_bad_reviews_are_400_naming_the_problem(api, live_campaign, change, field, fragment):
    task = task_in_review(live_campaign)
    reviewer = reviewers(1)[0]
    assignment = claim(api, reviewer).json()
    sheet_options = {"override": change.pop("override")} if "override" in change else {}
    body = {**review_body(task, **sheet_options), **change}
    response = api.as_user(reviewer).post(
        f"/api/v1/assignments/{assignment['id']}/review/", body, format="json"
    )
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert field in details and fragment in str(details[field])
    assert not Review.objects.exists()


def test_a_missing_score_is_400(api, live_campaign):
    task = task_in_review(live_campaign)
    reviewer = reviewers(1)[0]
    assignment = claim(api, reviewer).json()
    body = review_body(task)
    body["scores"] = body["scores"][1:]
    response = api.as_user(reviewer).post(
        f"/api/v1/assignments/{assignment['id']}/review/", body, format="json"
    )
    assert response.status_code == 400 and "Missing scores" in str(
        response.json()["error"]["details"]
    )


def test_a_submitted_review_cannot_be_submitted_again(api, live_campaign):
    task = task_in_review(live_campaign)
    reviewer = reviewers(1)[0]
    assignment = claim(api, reviewer).json()
    url = f"/api/v1/assignments/{assignment['id']}/review/"
    assert api.as_user(reviewer).post(url, review_body(task), format="json").status_code == 201
    again = api.as_user(reviewer).post(url, review_body(task), format="json")
    assert again.status_code == 409


def test_idempotency_key_replays_the_first_review_and_refuses_another_body(api, live_campaign):
    task = task_in_review(live_campaign)
    reviewer = reviewers(1)[0]
    assignment = claim(api, reviewer).json()
    url = f"/api/v1/assignments/{assignment['id']}/review/"
    client = api.as_user(reviewer)
    first = client.post(url, review_body(task), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = client.post(url, review_body(task), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json()
    assert Review.objects.count() == 1
    other = client.post(
        url, review_body(task, preference=3), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other.status_code == 422


def test_other_people_see_404_for_an_assignment(api, live_campaign):
    task_in_review(live_campaign)
    owner, other = reviewers(2)
    assignment = claim(api, owner).json()
    assert api.as_user(other).get(f"/api/v1/assignments/{assignment['id']}/").status_code == 404


def test_arbiters_who_authored_or_reviewed_the_task_may_not_arbitrate(api, live_campaign):
    both = UserFactory(roles=["reviewer", "arbiter"])
    task = task_in_review(live_campaign)
    people = [both, *reviewers(2)]
    review_round(api, task, people, [review_body(task, preference=p) for p in (-2, 2, -1)])
    arbitration = Arbitration.objects.get(task=task)
    response = api.as_user(both).post(f"/api/v1/arbitrations/{arbitration.pk}/claim/")
    assert response.status_code == 403
    author_arbiter = task.author
    author_arbiter.groups.add(*UserFactory(roles=["arbiter"]).groups.all())
    response = api.as_user(author_arbiter).post(f"/api/v1/arbitrations/{arbitration.pk}/claim/")
    assert response.status_code == 404  # its author does not see it (tests/security)


def test_transitions_from_the_wrong_state_are_409(api, live_campaign):
    task = task_in_review(live_campaign)
    assert api.as_user(task.author).post(f"/api/v1/tasks/{task.pk}/revise/").status_code == 409
    people = reviewers(3)
    review_round(api, task, people, [review_body(task, preference=p) for p in (-2, 2, -1)])
    arbitration = Arbitration.objects.get(task=task)
    arbiter = api.as_user(UserFactory(roles=["arbiter"]))
    body = {"decision": "send_back", "rationale": "The scenario needs a clearer prompt."}
    assert (
        arbiter.post(
            f"/api/v1/arbitrations/{arbitration.pk}/resolve/", body, format="json"
        ).status_code
        == 200
    )
    again = arbiter.post(f"/api/v1/arbitrations/{arbitration.pk}/resolve/", body, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "transition_not_allowed"
    task.refresh_from_db()
    assert task.state == TaskState.CHANGES_REQUESTED


def test_claim_detail_and_review_submit_run_a_fixed_number_of_queries(
    api, live_campaign, django_assert_max_num_queries
):
    counts = []
    for turns in (1, 3):
        campaign = make_campaign(model_versions=list(live_campaign.model_versions.all()))
        task = task_in_review(campaign, turns=turns)
        client = api.as_user(reviewers(1)[0])
        with django_assert_max_num_queries(50) as claimed:
            assignment = client.post(
                "/api/v1/assignments/next/", {"campaign": campaign.pk}, format="json"
            ).json()
        assert assignment["task"]["id"] == task.pk
        with django_assert_max_num_queries(50) as detail:
            client.get(f"/api/v1/assignments/{assignment['id']}/")
        with django_assert_max_num_queries(50) as submit:
            response = client.post(
                f"/api/v1/assignments/{assignment['id']}/review/", review_body(task), format="json"
            )
        assert response.status_code == 201
        counts.append(tuple(len(q.captured_queries) for q in (claimed, detail, submit)))
    assert counts[0] == counts[1], counts
    assert counts[0] == EXPECTED_QUERIES, counts


# Claim next: token, roles, BEGIN, the first open slot (locked, with its task, repository and
# rubric), the slot's claim, the assignment, COMMIT, the stamp of the task's evidence, and its
# blinded turns (built by this first reader of the task, then cached).
# Detail: token, roles, the assignment with task, campaign, rubric version and review, and the
# stamp of its evidence (the blinded turns come from the cache the claim filled; one query more
# when they do not, tests/reviews/test_blind_turns_cache.py). Submit: token, roles, BEGIN, the
# locks (assignment, slot and task in one), the expected scores, the review, the two transitions,
# the reviewer's work-log entry (each write carries its audit context), the round count, COMMIT.
EXPECTED_QUERIES = (9, 3, 12)


def test_the_trail_names_what_happened_in_review(api, live_campaign):
    from audit.models import AuditEvent

    task = task_in_review(live_campaign)
    review_round(api, task, reviewers(3), [review_body(task, preference=p) for p in (-2, 2, -1)])
    arbitration = Arbitration.objects.get(task=task)
    arbiter = api.as_user(UserFactory(roles=["arbiter"]))
    arbiter.post(
        f"/api/v1/arbitrations/{arbitration.pk}/resolve/",
        {
            "decision": "resolve",
            "preference": -1,
            "scores": score_sheet(task),
            "rationale": "A is right.",
            "rubric_revision": {
                "policy": {"max_score_spread": 2},
                "rationale": "Two points is honest doubt.",
            },
        },
        format="json",
    )
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "review.submitted",
        "assignment.submitted",
        "task.escalated",
        "arbitration.resolved",
        "task.resolved",
        "rubric.revised",
        "candidate.generated",
    } <= actions
    revised = AuditEvent.objects.get(action="rubric.revised")
    assert revised.reason == "Two points is honest doubt."
