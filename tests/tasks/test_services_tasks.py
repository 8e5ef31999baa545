from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from audit.models import AuditEvent
from core.errors import Conflict
from reviews import services as review_services
from tasks import generation, services
from tasks.models import Candidate, CandidateState, TaskSlot, TaskState
from tasks.services import ValidationFailed
from tests.accounts.factories import UserFactory
from tests.tasks.factories import GOOD_RATIONALE, make_campaign, make_task

pytestmark = pytest.mark.django_db


def generate_inline(task, *, rounds=20):
    """Runs the generation jobs in this process, in dependency order, until the task settles."""
    for _ in range(rounds):
        task.refresh_from_db()
        if task.state != TaskState.GENERATING:
            return task
        for candidate_id in generation.next_candidates(task):
            generation.run_candidate(candidate_id)
    raise AssertionError("generation did not settle")


def test_slots_are_balanced_across_a_campaign():
    campaign = make_campaign()
    for _ in range(10):
        make_task(campaign=campaign)
    first = Counter(
        TaskSlot.objects.filter(task__campaign=campaign, label="A").values_list(
            "model_version", flat=True
        )
    )
    assert sorted(first.values()) == [5, 5]


def test_generation_answers_every_turn_with_each_models_own_context(live_campaign, fake_models):
    task = make_task(campaign=live_campaign)
    services.turn_add(task=task, actor=task.author, prompt="Now also add a regression test for it.")
    services.task_generate(task=task, actor=task.author)
    task = generate_inline(task)
    assert task.state == TaskState.DRAFT
    candidates = list(Candidate.objects.filter(turn__task=task).select_related("turn", "slot"))
    assert len(candidates) == 4 and {c.state for c in candidates} == {CandidateState.SUCCEEDED}
    by_key = {(c.turn.index, c.slot.label): c for c in candidates}
    for label in "AB":
        first, follow_up = by_key[(1, label)], by_key[(2, label)]
        sent = follow_up.request["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        assert sent[1]["content"] == first.output  # its own answer, not the other model's
        assert follow_up.content_hash and follow_up.provider_request_id and follow_up.usage
        assert follow_up.validator_results.filter(key="diff_parses", passed=True).exists()
    assert by_key[(1, "A")].output != by_key[(1, "B")].output


def test_a_duplicated_job_stores_one_answer(live_campaign):
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    candidate_id = generation.next_candidates(task)[0]
    assert generation.run_candidate(candidate_id) == "succeeded"
    assert generation.run_candidate(candidate_id) == "skipped"
    succeeded = AuditEvent.objects.filter(
        object_type="tasks.candidate", object_id=str(candidate_id), action="candidate.generated"
    )
    assert succeeded.count() == 1


def test_a_job_whose_claim_was_swept_cannot_store(live_campaign, settings, monkeypatch):
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    candidate_id = generation.next_candidates(task)[0]
    stored = {}

    real_store = generation._store_answer

    def sweep_then_store(cid, token, result):
        # While the provider answered, the sweep decided the job was lost.
        Candidate.objects.filter(pk=cid).update(claimed_at=timezone.now() - timedelta(hours=1))
        generation.sweep_stuck_candidates()
        stored["first"] = real_store(cid, token, result)
        return stored["first"]

    monkeypatch.setattr(generation, "_store_answer", sweep_then_store)
    generation.run_candidate(candidate_id)
    assert stored["first"] == "superseded"
    assert Candidate.objects.get(pk=candidate_id).state == CandidateState.PENDING


def test_retryable_failures_release_then_a_permanent_one_fails_the_task(
    live_campaign, fake_models, settings
):
    settings.GENERATION_MAX_ATTEMPTS = 2
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    fake_models.fail_next(2, status=500)
    candidate_id = generation.next_candidates(task)[0]
    assert generation.run_candidate(candidate_id) == "retrying"
    candidate = Candidate.objects.get(pk=candidate_id)
    assert (candidate.state, candidate.attempts) == (CandidateState.PENDING, 1)
    assert generation.run_candidate(candidate_id) == "failed"
    task.refresh_from_db()
    assert task.state == TaskState.GENERATION_FAILED
    assert "500" in Candidate.objects.get(pk=candidate_id).error

    services.task_retry(task=task, actor=task.author)
    assert Candidate.objects.get(pk=candidate_id).attempts == 0
    assert generate_inline(task).state == TaskState.DRAFT


def test_a_bad_request_is_not_retried(live_campaign, fake_models):
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    fake_models.fail_next(1, status=400)
    assert generation.run_candidate(generation.next_candidates(task)[0]) == "failed"


def test_only_the_author_generates(live_campaign):
    task = make_task(campaign=live_campaign)
    with pytest.raises(PermissionError):
        services.task_generate(task=task, actor=UserFactory(roles=["author"]))


def test_generate_needs_an_unanswered_turn(live_campaign):
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    with pytest.raises(Conflict):
        services.task_generate(task=task, actor=task.author)


def test_submit_refuses_when_blocking_validators_fail_and_keeps_their_results(live_campaign):
    task = make_task(campaign=live_campaign, prompt="too short")
    services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    with pytest.raises(ValidationFailed) as refused:
        review_services.task_submit(task=task, actor=task.author, preference=1, rationale="meh")
    failing = {f["key"] for f in refused.value.detail["failing"]}
    assert failing == {"prompt_length", "rationale_length"}
    assert task.validator_results.filter(key="prompt_length", passed=False).exists()
    task.refresh_from_db()
    assert task.state == TaskState.DRAFT


def test_submit_needs_every_turn_answered(live_campaign):
    task = make_task(campaign=live_campaign)
    with pytest.raises(Conflict):
        review_services.task_submit(
            task=task, actor=task.author, preference=1, rationale=GOOD_RATIONALE
        )


def test_submit_moves_to_review_and_records_the_transition(live_campaign):
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    task = review_services.task_submit(
        task=task, actor=task.author, preference=-2, rationale=GOOD_RATIONALE
    )
    assert task.state == TaskState.IN_REVIEW and task.author_preference == -2
    event = AuditEvent.objects.filter(object_type="tasks.task", object_id=str(task.pk)).last()
    assert event.action == "task.submitted"
    assert event.changes["state"] == ["draft", "in_review"]


def test_only_a_lead_cancels_and_the_reason_is_kept(live_campaign):
    task = make_task(campaign=live_campaign)
    with pytest.raises(PermissionError):
        review_services.task_cancel(task=task, actor=task.author, reason="no")
    lead = UserFactory(roles=["lead"])
    review_services.task_cancel(task=task, actor=lead, reason="duplicate of another task")
    event = AuditEvent.objects.filter(object_type="tasks.task", object_id=str(task.pk)).last()
    assert (event.action, event.reason, event.actor_id) == (
        "task.cancelled",
        "duplicate of another task",
        lead.id,
    )
    with pytest.raises(TransitionNotAllowed):
        review_services.task_cancel(task=task, actor=lead, reason="again")


def test_storing_an_answer_dispatches_only_that_slots_next_turn(live_campaign):
    task = make_task(campaign=live_campaign)
    services.turn_add(task=task, actor=task.author, prompt="Now also add a regression test for it.")
    services.task_generate(task=task, actor=task.author)
    first_a, first_b = generation.next_candidates(task)
    dispatched_b = Candidate.objects.get(pk=first_b).dispatched_at
    generation.run_candidate(first_a)
    second_a = Candidate.objects.get(
        turn__task=task, turn__index=2, slot=Candidate.objects.get(pk=first_a).slot
    )
    assert second_a.dispatched_at is not None
    # The other slot's first turn was queued by `generate` and must not be queued again.
    assert Candidate.objects.get(pk=first_b).dispatched_at == dispatched_b
