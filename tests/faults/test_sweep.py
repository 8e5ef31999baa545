"""The sweep: work never sent, or lost on every attempt."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.fsm import apply_transition
from tasks import generation
from tasks import services as task_services
from tasks.models import Candidate, CandidateState, TaskState
from tests.tasks.factories import make_task

pytestmark = pytest.mark.django_db


def lose_every_running_job(candidates, *, minutes_ago=10):
    """Claims what is pending, as a job would, and never answers: its worker died."""
    at = timezone.now() - timedelta(minutes=minutes_ago)
    for candidate in candidates.filter(state=CandidateState.PENDING):
        Candidate.objects.filter(pk=candidate.pk).update(dispatched_at=at)
        apply_transition(candidate, "claim", actor=None, token="lost", at=at)


def test_a_candidate_lost_on_its_last_attempt_is_failed_not_sent_again(settings):
    settings.GENERATION_MAX_ATTEMPTS = 2
    settings.GENERATION_STUCK_AFTER_SECONDS = 60
    task = make_task()
    task_services.task_generate(task=task, actor=task.author)
    candidates = Candidate.objects.filter(turn__task=task)

    lose_every_running_job(candidates)
    assert generation.sweep_stuck_candidates() == 2
    assert set(candidates.values_list("state", flat=True)) == {CandidateState.PENDING}

    lose_every_running_job(candidates)
    assert generation.sweep_stuck_candidates() == 0
    for candidate in candidates:
        assert candidate.state == CandidateState.FAILED
        assert candidate.attempts == 2
        assert candidate.error.startswith("no answer after 2 attempts")
    task.refresh_from_db()
    assert task.state == TaskState.GENERATION_FAILED


def test_work_never_sent_is_sent_at_once_but_a_follow_up_waits_for_its_turn(settings):
    settings.GENERATION_STUCK_AFTER_SECONDS = 600
    task = make_task()
    task_services.turn_add(task=task, actor=task.author, prompt="Now add a regression test.")
    task_services.task_generate(task=task, actor=task.author)
    candidates = Candidate.objects.filter(turn__task=task)
    assert generation.sweep_stuck_candidates() == 0  # just sent: nothing is due

    candidates.update(dispatched_at=None)  # as when the broker refused the messages
    assert generation.sweep_stuck_candidates() == 2
    assert not candidates.filter(turn__index=1, dispatched_at=None).exists()
    assert not candidates.filter(turn__index=2).exclude(dispatched_at=None).exists()
