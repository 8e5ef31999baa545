"""A poison job: the provider's answer makes storing it fail every time."""

import pytest

from audit.models import AuditEvent
from tasks import services as task_services
from tasks.models import Candidate, CandidateState, TaskState
from tests.fakes.model_server import default_answer
from tests.harness.processes import wait_for
from tests.harness.suite import on_test_database
from tests.harness.workers import Worker
from tests.tasks.factories import make_task
from tests.tasks.test_e2e_generation import FAST_RETRIES, assert_stored_exactly_once, settled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

POISON = "POISON"
MAX_ATTEMPTS = 3


def answer_or_poison(body):
    text = default_answer(body)
    last = body["messages"][-1]["content"]
    prompt = last if isinstance(last, str) else "".join(block["text"] for block in last)
    # PostgreSQL text cannot hold NUL: the answer parses, but its store raises every time.
    return text + "\x00" if POISON in prompt else text


def test_a_poison_job_is_tried_a_bounded_number_of_times_then_parked_and_blocks_nothing(
    live_campaign, fake_models
):
    fake_models.answer_with(answer_or_poison)
    poisoned = make_task(campaign=live_campaign, prompt=f"{POISON}: fix the pip install injection.")
    healthy = [make_task(campaign=live_campaign, author=poisoned.author) for _ in range(2)]
    env = {**FAST_RETRIES, "GENERATION_MAX_ATTEMPTS": str(MAX_ATTEMPTS)}
    worker = Worker(concurrency=2, env=on_test_database(env)).start()
    try:
        for task in [poisoned, *healthy]:
            task_services.task_generate(task=task, actor=task.author)
        ids = [task.pk for task in [poisoned, *healthy]]
        states = wait_for(settled(ids), timeout=60, message="every task to settle")
        # The task fails with its first parked candidate; the other slot's may still be trying.
        wait_for(
            lambda: (
                not Candidate.objects.filter(
                    turn__task=poisoned, state__in=[CandidateState.PENDING, CandidateState.RUNNING]
                ).exists()
            ),
            timeout=30,
            message="both poisoned candidates to be parked",
        )
    finally:
        worker.stop()
    assert states == {TaskState.DRAFT, TaskState.GENERATION_FAILED}
    poisoned.refresh_from_db()
    assert poisoned.state == TaskState.GENERATION_FAILED
    assert_stored_exactly_once([task.pk for task in healthy], per_task=2)
    for candidate in Candidate.objects.filter(turn__task=poisoned):
        assert candidate.state == CandidateState.FAILED
        assert candidate.attempts == MAX_ATTEMPTS
        assert "NUL" in candidate.error
        assert candidate.output == ""
    calls = [r for r in fake_models.requests if POISON in str(r["body"]["messages"][-1])]
    assert len(calls) == 2 * MAX_ATTEMPTS
    assert not AuditEvent.objects.filter(
        object_type="tasks.candidate",
        action="candidate.generated",
        object_id__in=[str(c.pk) for c in Candidate.objects.filter(turn__task=poisoned)],
    ).exists()
