"""Writes for evidence: queue a candidate's evidence job, and store what the job found."""

from __future__ import annotations

import functools
import logging

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from marlin.context import audit_insert
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


def evidence_dispatch_on_commit(*, candidate: Candidate, campaign_evidence: dict) -> None:
    """Queues the candidate's evidence job once the surrounding transaction commits, when its
    campaign asks for evidence. Takes the campaign's setting so the caller spends no query."""
    if not campaign_evidence:
        return
    transaction.on_commit(functools.partial(_send, candidate.pk))


def _send(candidate_id: int) -> None:
    """Like generation's dispatch, a broker that is down fails nobody: the answer is stored
    already, and the evidence is only missing (logged) until the candidate's next delivery."""
    from tasks.jobs import collect_evidence_job

    try:
        collect_evidence_job.delay(candidate_id=candidate_id)
    except BrokerUnavailable as exc:
        logger.warning(
            "broker unavailable; evidence not queued",
            extra={"candidate": candidate_id, "error": str(exc)},
        )


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
        and stored.get("stage") not in NOT_ABOUT_THE_CHANGE
    ):
        return "skipped"
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
