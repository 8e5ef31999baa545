"""A review's top score that the candidate's own evidence contradicts is flagged to the arbiter."""

import pytest

from reviews.agreement import evidence_conflicts
from reviews.models import Arbitration, Outcome
from rubrics.services import CODE_CHANGE_CRITERIA
from tasks.models import Candidate, TaskState, ValidatorResult
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, reviewers, task_in_review
from tests.reviews.test_api_reviews import review_round

pytestmark = pytest.mark.django_db


def failing_tests(task, slot="A", **details):
    candidate = Candidate.objects.get(turn__task=task, turn__index=1, slot__label=slot)
    return ValidatorResult.objects.create(
        task=task,
        candidate=candidate,
        key="evidence.tests",
        passed=False,
        severity="advisory",
        message="Tests fail (1 failed).",
        details={"bears_on": "correctness", **details},
    )


def top_correctness_for_a(task):
    return review_body(task, preference=-2, override={(1, "A", "correctness"): {"score": 5}})


def test_agreeing_top_scores_over_failing_tests_go_to_an_arbiter(api, live_campaign):
    task = task_in_review(live_campaign)
    failing_tests(task)
    task = review_round(api, task, reviewers(3), [top_correctness_for_a(task)] * 3)
    assert task.state == TaskState.IN_ARBITRATION
    assert not Outcome.objects.filter(task=task).exists()
    flagged = Arbitration.objects.get(task=task).disagreement["evidence_conflicts"]
    assert len(flagged) == 3  # one per review
    assert {(f["turn"], f["slot"], f["criterion"], f["score"], f["evidence"]) for f in flagged} == {
        (1, "A", "correctness", 5, "evidence.tests")
    }
    assert flagged[0]["message"] == "Tests fail (1 failed)."
    client = api.as_user(UserFactory(roles=["arbiter"]))
    listed = client.get("/api/v1/arbitrations/", {"state": "open"}).json()["results"]
    assert listed[0]["disagreement"]["evidence_conflicts"] == flagged


def test_scores_below_the_top_or_evidence_on_another_slot_are_not_flagged(api, live_campaign):
    task = task_in_review(live_campaign)
    failing_tests(task, slot="B")  # B fails; reviewers give B the usual 3
    task = review_round(api, task, reviewers(3), [top_correctness_for_a(task)] * 3)
    assert task.state == TaskState.COMPLETED
    assert Outcome.objects.get(task=task).method == "consensus"


def test_a_repository_that_could_not_be_checked_out_is_no_evidence(api, live_campaign):
    task = task_in_review(live_campaign)
    failing_tests(task, stage="checkout")
    task = review_round(api, task, reviewers(3), [top_correctness_for_a(task)] * 3)
    assert task.state == TaskState.COMPLETED


def test_a_disagreement_carries_the_conflicts_it_has_and_an_empty_list_otherwise(
    api, live_campaign
):
    task = task_in_review(live_campaign)
    task = review_round(
        api, task, reviewers(3), [review_body(task, preference=p) for p in (-2, 2, -1)]
    )
    assert Arbitration.objects.get(task=task).disagreement["evidence_conflicts"] == []


def test_conflicts_match_criterion_slot_turn_and_the_top_of_the_scale():
    failing = {
        (1, "A"): [
            {"key": "evidence.tests", "message": "fail", "bears_on": "correctness"},
            {"key": "evidence.bandit", "message": "B602", "bears_on": "security"},
            {"key": "evidence.ruff", "message": "F401", "bears_on": "maintainability"},
        ]
    }
    scores = [
        {"turn": 1, "slot": "A", "criterion": "correctness", "score": 5},
        {"turn": 1, "slot": "A", "criterion": "security", "score": 5},
        {"turn": 1, "slot": "A", "criterion": "maintainability", "score": 5},
        {"turn": 2, "slot": "A", "criterion": "correctness", "score": 5},
        {"turn": 1, "slot": "B", "criterion": "correctness", "score": 5},
    ]
    found = evidence_conflicts([(7, scores), (8, scores[:1])], failing, CODE_CHANGE_CRITERIA)
    assert [(f["review"], f["criterion"], f["evidence"]) for f in found] == [
        (7, "correctness", "evidence.tests"),
        (7, "security", "evidence.bandit"),
        (8, "correctness", "evidence.tests"),
    ]
    lower = [{**scores[0], "score": 4}]
    assert evidence_conflicts([(9, lower)], failing, CODE_CHANGE_CRITERIA) == []
