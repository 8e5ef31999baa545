"""Producing candidates: which to dispatch, one job's claim / call / store, and the stuck sweep.

A candidate job claims its row (pending → running) before calling the provider, calls it outside
any transaction, and stores the answer only if its claim still holds. A redelivered or duplicated
message therefore finds the row no longer pending and does nothing, and a job whose claim was
taken away by the sweep cannot store a second answer.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from core.fsm import transition_locked
from core.jobs import send_job
from tasks import spend, validator_runs
from tasks.diffs import extract_diff
from tasks.evidence_services import evidence_dispatch_on_commit, evidence_due
from tasks.models import Candidate, CandidateState, Task, TaskState
from tasks.providers import (
    GenerationRequest,
    GenerationResult,
    Message,
    ProviderError,
    build_provider,
)

logger = logging.getLogger("marlin.generation")


def dispatch_on_commit(candidate_ids: list[int], *, countdown: float = 0) -> None:
    """Queue one job per candidate once the surrounding transaction commits.

    A broker that cannot take the messages does not fail the caller: the candidates not sent
    lose their `dispatched_at` and the sweep sends them once the broker is back.
    """
    if not candidate_ids:
        return
    Candidate.objects.filter(pk__in=candidate_ids).update(dispatched_at=timezone.now())
    transaction.on_commit(functools.partial(_send, list(candidate_ids), countdown))


def _send(candidate_ids: list[int], countdown: float) -> None:
    for n, candidate_id in enumerate(candidate_ids):
        try:
            send_job(
                "tasks.generate_candidate", candidate_id=candidate_id, countdown=countdown or None
            )
        except BrokerUnavailable as exc:
            # Stop at the first failure: every further message would wait out the same timeout.
            unsent = candidate_ids[n:]
            logger.warning(
                "broker unavailable; candidates left for the sweep",
                extra={"candidates": unsent, "error": str(exc)},
            )
            with transaction.atomic():  # one transaction, so the audit entry knows who and why
                Candidate.objects.filter(pk__in=unsent, state=CandidateState.PENDING).update(
                    dispatched_at=None
                )
            return


def next_candidates(task: Task, *, slot_id: int | None = None) -> list[int]:
    """Per slot (or for one slot), the earliest pending candidate whose earlier turns are answered."""
    ready: list[int] = []
    candidates = Candidate.objects.filter(turn__task=task).order_by("slot_id", "turn__index")
    if slot_id is not None:
        candidates = candidates.filter(slot_id=slot_id)
    blocked_slots: set[int] = set()
    for candidate in candidates.only("id", "slot_id", "state"):
        if candidate.slot_id in blocked_slots:
            continue
        if candidate.state == CandidateState.SUCCEEDED:
            continue
        if candidate.state == CandidateState.PENDING:
            ready.append(candidate.pk)
        blocked_slots.add(candidate.slot_id)
    return ready


def build_request(candidate: Candidate) -> GenerationRequest:
    """The conversation as this model version saw it: its own earlier answers as context."""
    model_version = candidate.slot.model_version
    earlier = (
        Candidate.objects.filter(slot=candidate.slot, turn__index__lt=candidate.turn.index)
        .select_related("turn")
        .order_by("turn__index")
    )
    messages: list[Message] = []
    for previous in earlier if candidate.turn.index > 1 else ():
        messages.append(Message(role="user", content=previous.turn.prompt))
        messages.append(Message(role="assistant", content=previous.output))
    messages.append(Message(role="user", content=candidate.turn.prompt))
    params = model_version.parameters or {}
    return GenerationRequest(
        model=model_version.model,
        messages=tuple(messages),
        system_prompt=params.get("system_prompt"),
        temperature=params.get("temperature"),
        max_tokens=int(params.get("max_tokens") or 4096),
        seed=params.get("seed"),
    )


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter, so retries of many jobs do not arrive together."""
    ceiling = min(
        settings.GENERATION_BACKOFF_MAX, settings.GENERATION_BACKOFF_BASE * 2 ** (attempt - 1)
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not security)


def run_candidate(candidate_id: int) -> str:
    """One job: claim, call the provider, store. Returns what happened, for the job log."""
    token = uuid.uuid4().hex
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        candidate = (
            Candidate.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("turn__task__campaign", "slot__model_version")
            .filter(pk=candidate_id)
            .first()
        )
        # Claim first: a redelivered message must not store a second answer.
        if candidate is None or candidate.state != CandidateState.PENDING:
            return "skipped"
        request = build_request(candidate)
        candidate.request = request.as_dict()
        needed = spend.reservation(request)
        fits, why = spend.fits_budget(candidate.turn.task.campaign, needed)
        if not fits:
            transition_locked(candidate, "refuse", actor=None, error=why)
            settle_task(candidate.turn.task_id)
            return "over_budget"
        candidate.token_charge = needed
        transition_locked(candidate, "claim", actor=None, token=token, at=timezone.now())
    model_version = candidate.slot.model_version
    provider = build_provider(
        model_version.provider,
        base_url=model_version.base_url or None,
        api_key_env=model_version.api_key_env or None,
        timeout=settings.GENERATION_TIMEOUT_SECONDS,
    )
    try:
        result = provider.generate(request)
    except ProviderError as exc:
        return _store_failure(candidate_id, token, exc)
    try:
        return _store_answer(candidate_id, token, result)
    except Exception as exc:
        # An answer that cannot be stored (a poison job) is retried like a failed call, a bounded
        # number of times, then the candidate is parked as failed with the error.
        logger.exception("storing the answer failed", extra={"candidate": candidate_id})
        return _store_failure(candidate_id, token, AnswerStoreError(f"{type(exc).__name__}: {exc}"))


class AnswerStoreError(ProviderError):
    """The provider answered, but storing the answer raised."""

    retryable = True


def _commit_without_waiting_for_disk() -> None:
    """Lets this transaction's commit return before its WAL reaches the disk.

    Only for the claim: if PostgreSQL crashes before the flush, the claim (and its audit entry)
    is lost together, the candidate is pending again, the job's store finds no claim and stores
    nothing, and the sweep dispatches it anew. The answer itself is always committed durably.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _locked_if_still_claimed(candidate_id: int, token: str) -> Candidate | None:
    candidate = (
        Candidate.objects.select_for_update(of=("self",))
        .select_related("turn__task__campaign")
        .get(pk=candidate_id)
    )
    if candidate.state != CandidateState.RUNNING or candidate.claim_token != token:
        return None  # the sweep took the claim away; another job owns it now
    return candidate


def _store_answer(candidate_id: int, token: str, result: GenerationResult) -> str:
    with transaction.atomic():
        candidate = _locked_if_still_claimed(candidate_id, token)
        if candidate is None:
            return "superseded"
        task = candidate.turn.task
        transition_locked(
            candidate,
            "succeed",
            actor=None,
            output=result.output,
            diff=extract_diff(result.output),
            response_meta=result.response_meta,
            usage=result.usage,
            latency_ms=result.latency_ms,
            provider_request_id=result.provider_request_id or "",
            content_hash=hashlib.sha256(result.output.encode()).hexdigest(),
            evidence_due_at=evidence_due(task.campaign.evidence),
        )
        validator_runs.candidate_validate(candidate=candidate)
        evidence_dispatch_on_commit(candidate=candidate, campaign_evidence=task.campaign.evidence)
        # Only this slot's next turn: the other slots' pending jobs are queued already, and
        # re-dispatching them would both duplicate the job and lock the row its job claims.
        dispatch_on_commit(next_candidates(task, slot_id=candidate.slot_id))
        settle_task(task.pk)
    return "succeeded"


def _store_failure(candidate_id: int, token: str, exc: ProviderError) -> str:
    with transaction.atomic():
        candidate = _locked_if_still_claimed(candidate_id, token)
        if candidate is None:
            return "superseded"
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if exc.retryable and candidate.attempts < settings.GENERATION_MAX_ATTEMPTS:
            transition_locked(candidate, "release", actor=None, error=error)
            dispatch_on_commit([candidate.pk], countdown=backoff_seconds(candidate.attempts))
            return "retrying"
        transition_locked(candidate, "fail", actor=None, error=error)
        settle_task(candidate.turn.task_id)
    return "failed"


def settle_task(task_id: int) -> None:
    """Ends the task's generation once every candidate is answered, or one has failed for good."""
    task = Task.objects.select_for_update().get(pk=task_id)
    if task.state != TaskState.GENERATING:
        return
    states = set(Candidate.objects.filter(turn__task_id=task_id).values_list("state", flat=True))
    if CandidateState.FAILED in states:
        transition_locked(
            task, "fail_generation", actor=None, reason="a candidate failed after retries"
        )
    elif states <= {CandidateState.SUCCEEDED}:
        transition_locked(task, "finish_generation", actor=None, reason="every candidate answered")


def sweep_stuck_candidates() -> int:
    """Re-queues candidates whose job was lost (worker died, message dropped) or never sent
    (broker down); fails those whose last attempt was lost. Returns how many it re-queued."""
    deadline = timezone.now() - timedelta(seconds=settings.GENERATION_STUCK_AFTER_SECONDS)
    earlier_unanswered = Candidate.objects.filter(
        slot=OuterRef("slot"), turn__index__lt=OuterRef("turn__index")
    ).exclude(state=CandidateState.SUCCEEDED)
    stuck = Candidate.objects.filter(
        Q(state=CandidateState.RUNNING, claimed_at__lt=deadline)
        | Q(state=CandidateState.PENDING, dispatched_at__lt=deadline)
        # Never sent: due at once, unless it waits for its slot's earlier turns (those are sent
        # when the earlier answer is stored).
        | (Q(state=CandidateState.PENDING, dispatched_at=None) & ~Exists(earlier_unanswered)),
        turn__task__state=TaskState.GENERATING,
    ).values_list("pk", flat=True)
    requeued = 0
    for candidate_id in list(stuck[:500]):
        with transaction.atomic():
            candidate = (
                Candidate.objects.select_for_update(skip_locked=True)
                .filter(pk=candidate_id)
                .first()
            )
            if candidate is None:
                continue
            if candidate.state == CandidateState.RUNNING and candidate.claimed_at < deadline:
                if candidate.attempts >= settings.GENERATION_MAX_ATTEMPTS:
                    # Lost on every attempt (a job that kills its worker): park it, do not loop.
                    transition_locked(
                        candidate,
                        "fail",
                        actor=None,
                        reason="no answer after the last attempt",
                        error=f"no answer after {candidate.attempts} attempts; {candidate.error}",
                    )
                    settle_task(candidate.turn.task_id)
                    continue
                transition_locked(
                    candidate,
                    "release",
                    actor=None,
                    reason="no answer before the deadline",
                    error="the job was lost before it answered",
                )
            if candidate.state == CandidateState.PENDING and (
                candidate.dispatched_at is None or candidate.dispatched_at < deadline
            ):
                dispatch_on_commit([candidate.pk])
                requeued += 1
    return requeued
