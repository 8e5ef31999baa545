"""The sandboxed evidence shows in the rubric beside the criterion it bears on: the tests beside
correctness, bandit beside security, on the reviewer's page and on the arbiter's."""

import pytest
from django.test.html import Element, parse_html

from reviews import services as review_services
from tasks.models import Candidate, ValidatorResult
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import task_in_review
from tests.web.test_pages import disagreement, signed_in

pytestmark = pytest.mark.django_db

TESTS_FAIL = "Tests fail (1 failed, 4 passed)."
BANDIT_FLAGS = "bandit: 1 medium or high severity issue."


def failing_evidence(task):
    """Candidate A of turn 1 fails its tests and bandit flags it."""
    candidate = Candidate.objects.get(turn__task=task, turn__index=1, slot__label="A")
    for key, message in (("evidence.tests", TESTS_FAIL), ("evidence.bandit", BANDIT_FLAGS)):
        ValidatorResult.objects.create(
            task=task,
            candidate=candidate,
            key=key,
            passed=False,
            severity=ValidatorResult.Severity.ADVISORY,
            message=message,
        )


def elements(node):
    for child in node.children:
        if isinstance(child, Element):
            yield child
            yield from elements(child)


def text_of(node):
    return " ".join(
        child if isinstance(child, str) else text_of(child) for child in node.children
    ).strip()


def rubric_checks(response):
    """criterion key -> {check key: its text} for the checks inside that criterion's block of
    the page's rubric."""
    assert response.status_code == 200, response.content[:500]
    (rubric,) = [
        e
        for e in elements(parse_html(response.content.decode()))
        if e.name == "section" and "rubric" in dict(e.attributes).get("class", "").split()
    ]
    shown = {}
    for block in elements(rubric):
        criterion = dict(block.attributes).get("data-criterion")
        if criterion:
            shown[criterion] = {
                dict(e.attributes)["data-check"]: text_of(e)
                for e in elements(block)
                if "data-check" in dict(e.attributes)
            }
    return shown


def assert_beside_their_criteria(shown):
    assert (
        shown["correctness"]["evidence.tests"] == f"Turn 1, A: evidence.tests failed ({TESTS_FAIL})"
    )
    assert (
        shown["security"]["evidence.bandit"]
        == f"Turn 1, A: evidence.bandit failed ({BANDIT_FLAGS})"
    )
    assert [criterion for criterion, checks in shown.items() if "evidence.tests" in checks] == [
        "correctness"
    ]
    assert [criterion for criterion, checks in shown.items() if "evidence.bandit" in checks] == [
        "security"
    ]


def test_the_review_page_shows_tests_beside_correctness_and_bandit_beside_security(
    live_campaign,
):
    task = task_in_review(live_campaign)
    failing_evidence(task)
    reviewer = UserFactory(roles=["reviewer"])
    assignment = review_services.assignment_claim_next(
        reviewer=reviewer, campaign_id=live_campaign.pk
    )
    response = signed_in(reviewer).get(f"/app/reviews/{assignment.pk}/")
    assert_beside_their_criteria(rubric_checks(response))


def test_the_arbitration_page_shows_tests_beside_correctness_and_bandit_beside_security(
    live_campaign,
):
    arbitration = disagreement(live_campaign, turns=1)
    failing_evidence(arbitration.task)
    arbiter = signed_in(UserFactory(roles=["arbiter"]))
    response = arbiter.get(f"/app/arbitrations/{arbitration.pk}/")
    assert_beside_their_criteria(rubric_checks(response))
