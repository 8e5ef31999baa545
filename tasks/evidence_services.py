"""Writes for evidence: queue a candidate's evidence job, store what the job found, and sweep
evidence that is overdue.

A queued job makes the candidate's evidence due (`Candidate.evidence_due_at`): stored results
clear it, and the sweep sends the job again once it is past, so a job lost with its worker or
never sent (broker down) is not lost. Every run that starts counts an attempt; past
`EVIDENCE_MAX_ATTEMPTS` the candidate is parked with a result that says so, never looped.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from core.context import audit_insert
from core.jobs import send_job
from tasks.evidence.checks import (
    NOT_ABOUT_THE_CHANGE,
    Finding,
    parse_config,
    unavailable_finding,
)
from tasks.evidence.collect import Workplace, collect
from tasks.models import Candidate, CandidateState, ValidatorResult

PREFIX = "evidence."
logger = logging.getLogger("marlin.evidence")


def evidence_due(campaign_evidence: dict) -> datetime | None:
    """When a newly answered candidate's evidence falls due for the sweep, or None when its
    campaign asks for none: stored with the answer itself, in the same write."""
    return _deadline() if campaign_evidence else None


def evidence_dispatch_on_commit(*, candidate: Candidate, campaign_evidence: dict) -> None:
    """Queues the candidate's evidence job once the surrounding transaction commits, when its
    campaign asks for evidence (the caller has made it due). Takes the campaign's setting so the
    caller spends no query."""
    if campaign_evidence:
        transaction.on_commit(functools.partial(_send, candidate.pk))


def _deadline() -> datetime:
    return timezone.now() + timedelta(seconds=settings.EVIDENCE_STUCK_AFTER_SECONDS)


def _send(candidate_id: int) -> None:
    """Like generation's dispatch, a broker that is down fails nobody: the answer is stored
    already, and the evidence is due at once for the sweep to send when the broker is back."""
    try:
        send_job("tasks.collect_evidence", candidate_id=candidate_id)
    except BrokerUnavailable as exc:
        logger.warning(
            "broker unavailable; evidence not queued, left for the sweep",
            extra={"candidate": candidate_id, "error": str(exc)},
        )
        with transaction.atomic():  # one transaction, so the audit entry knows who and why
            Candidate.objects.filter(pk=candidate_id).update(evidence_due_at=timezone.now())


def evidence_collect(*, candidate_id: int, workplace: Workplace | None = None) -> str:
    """Applies the candidate's change to its task's base commit, runs the campaign's checks in a
    sandbox, and stores one validator result per check. Returns what happened, for the job log.

    A second run for the same answer and base commit finds the results stored and does nothing.
    """
    candidate = (
        Candidate.objects.select_related("turn__task__repository", "turn__task__campaign")
        .filter(pk=candidate_id)
        .first()
    )
    if candidate is None or candidate.state != CandidateState.SUCCEEDED:
        return "skipped"
    task = candidate.turn.task
    config = parse_config(task.campaign.evidence)
    if config is None:
        return "skipped"
    stored = (
        ValidatorResult.objects.filter(candidate=candidate, key="evidence.apply")
        .values_list("details", flat=True)
        .first()
    )
    if (
        stored is not None
        and stored.get("content_hash") == candidate.content_hash
        and stored.get("requested_commit") == task.base_commit
        and not _not_about_the_change(stored)
    ):
        return "skipped"
    if candidate.evidence_attempts >= settings.EVIDENCE_MAX_ATTEMPTS:
        _park(candidate)  # a redelivered job of a candidate whose every run was lost
        return "parked"
    Candidate.objects.filter(pk=candidate.pk).update(
        evidence_attempts=F("evidence_attempts") + 1, evidence_due_at=_deadline()
    )
    source_url = task.repository.source_url
    if source_url:
        sha, findings = collect(
            source_url=source_url,
            base_commit=task.base_commit,
            diff=candidate.diff,
            config=config,
            workplace=workplace or Workplace.from_settings(),
        )
    else:
        reason = f"{task.repository.full_name} has no source to check the change against."
        sha, findings = None, [unavailable_finding(reason, stage="source")]
    _store(candidate, findings, base_commit=sha, requested_commit=task.base_commit)
    return "stored"


@transaction.atomic
def _store(
    candidate: Candidate, findings: list[Finding], *, base_commit: str | None, requested_commit: str
) -> None:
    stamp = {
        "content_hash": candidate.content_hash,
        "requested_commit": requested_commit,
        "base_commit": base_commit,
    }
    rows = [
        ValidatorResult(
            task_id=candidate.turn.task_id,
            candidate=candidate,
            key=finding.key,
            passed=finding.passed,
            severity=ValidatorResult.Severity.ADVISORY,
            message=finding.message,
            details={**finding.details, **stamp},
        )
        for finding in findings
    ]
    with audit_insert(
        "candidate.evidence", object_type="tasks.validatorresult", reason="evidence run"
    ):
        # Checks that did not run this time (the change no longer applies) leave no stale result.
        ValidatorResult.objects.filter(candidate=candidate, key__startswith=PREFIX).exclude(
            key__in=[f.key for f in findings]
        ).delete()
        ValidatorResult.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["task", "candidate", "key"],
            update_fields=["passed", "severity", "message", "details", "updated_at"],
        )
    # A repository or sandbox that could not be had says nothing about the change: the evidence
    # stays due, and the sweep tries again after the deadline.
    if not any(f.key == "evidence.apply" and _not_about_the_change(f.details) for f in findings):
        Candidate.objects.filter(pk=candidate.pk).update(evidence_due_at=None)


def _not_about_the_change(details: dict) -> bool:
    return details.get("stage") in NOT_ABOUT_THE_CHANGE


def _park(candidate: Candidate) -> None:
    """Gives up on a candidate's evidence: stores why, in place of any result so far."""
    last = (
        ValidatorResult.objects.filter(candidate=candidate, key="evidence.apply")
        .values_list("message", flat=True)
        .first()
    )
    reason = f"No evidence after {candidate.evidence_attempts} attempts."
    if last:
        reason += f" The last said: {last}"
    task = candidate.turn.task
    _store(
        candidate,
        [unavailable_finding(reason, stage="attempts")],
        base_commit=None,
        requested_commit=task.base_commit,
    )


def sweep_overdue_evidence() -> int:
    """Sends the evidence job again for candidates whose evidence is overdue (the job was lost,
    never sent, or found no repository or sandbox); parks those out of attempts, and lets go of
    those that need evidence no more. Returns how many jobs it sent."""
    overdue = Candidate.objects.filter(evidence_due_at__lt=timezone.now()).values_list(
        "pk", flat=True
    )
    sent = 0
    for candidate_id in list(overdue[:500]):
        with transaction.atomic():
            candidate = (
                Candidate.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("turn__task__campaign")
                .filter(pk=candidate_id, evidence_due_at__lt=timezone.now())
                .first()
            )
            if candidate is None:
                continue  # another sweep holds it, or it was settled since the first read
            campaign_evidence = candidate.turn.task.campaign.evidence
            if (
                candidate.state != CandidateState.SUCCEEDED
                or parse_config(campaign_evidence) is None
            ):
                Candidate.objects.filter(pk=candidate.pk).update(evidence_due_at=None)
            elif candidate.evidence_attempts >= settings.EVIDENCE_MAX_ATTEMPTS:
                _park(candidate)
            else:
                Candidate.objects.filter(pk=candidate.pk).update(evidence_due_at=_deadline())
                evidence_dispatch_on_commit(
                    candidate=candidate, campaign_evidence=campaign_evidence
                )
                sent += 1
    return sent
