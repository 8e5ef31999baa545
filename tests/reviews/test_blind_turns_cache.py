"""The blinded turns reviewers read come from the cache once a task's answers have settled,
and are never stale: evidence arriving later, or answers that still change, are read afresh."""

import socket

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test.utils import override_settings

from tasks.models import Candidate, Task, TaskState, ValidatorResult
from tests.reviews.helpers import reviewers, task_in_review
from tests.reviews.test_api_reviews import claim

pytestmark = pytest.mark.django_db


def read(client, assignment_id):
    response = client.get(f"/api/v1/assignments/{assignment_id}/")
    assert response.status_code == 200, response.content
    return response.json()["task"]["turns"]


def candidate_a(task):
    return Candidate.objects.get(turn__task=task, turn__index=1, slot__label="A")


def validators_of_a(turns):
    return {v["key"]: v["passed"] for v in turns[0]["candidates"][0]["validators"]}


@pytest.fixture
def claimed(api, live_campaign):
    task = task_in_review(live_campaign)
    reviewer = reviewers(1)[0]
    response = claim(api, reviewer)
    assert response.status_code == 201, response.content
    return task, api.as_user(reviewer), response.json()


def test_a_cached_read_gives_the_same_turns_without_building_them(
    api, claimed, django_assert_num_queries
):
    task, client, assignment = claimed
    cache.clear()
    with django_assert_num_queries(4):  # token, roles, the assignment, the turns
        cold = read(client, assignment["id"])
    with django_assert_num_queries(3):
        warm = read(client, assignment["id"])
    assert warm == cold == assignment["task"]["turns"]
    assert cold[0]["candidates"][0]["diff"] == candidate_a(task).diff


def test_evidence_added_changed_or_removed_after_caching_is_shown(claimed):
    task, client, assignment = claimed
    before = validators_of_a(read(client, assignment["id"]))
    assert "evidence.tests" not in before
    result = ValidatorResult.objects.create(
        task=task,
        candidate=candidate_a(task),
        key="evidence.tests",
        passed=False,
        severity="advisory",
        message="Tests fail (1 failed).",
    )
    assert validators_of_a(read(client, assignment["id"]))["evidence.tests"] is False
    result.passed = True
    result.save()
    assert validators_of_a(read(client, assignment["id"]))["evidence.tests"] is True
    result.delete()
    assert validators_of_a(read(client, assignment["id"])) == before


def test_answers_of_a_task_back_in_authoring_are_never_cached(claimed):
    task, client, assignment = claimed
    # As if an arbiter had sent it back and the author were regenerating an answer.
    Task.objects.filter(pk=task.pk).update(state=TaskState.DRAFT)
    read(client, assignment["id"])
    Candidate.objects.filter(pk=candidate_a(task).pk).update(diff="--- a/x\n+++ b/x\n")
    assert read(client, assignment["id"])[0]["candidates"][0]["diff"] == "--- a/x\n+++ b/x\n"


def test_without_redis_the_turns_come_from_the_database(claimed, django_assert_num_queries):
    _, client, assignment = claimed
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    away = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    with override_settings(CACHES=away):
        for _ in range(2):
            with django_assert_num_queries(4):
                turns = read(client, assignment["id"])
            assert turns == assignment["task"]["turns"]
