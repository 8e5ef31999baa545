"""Celery jobs of the tasks app: take ids, call the generation layer."""

from celery import shared_task

from tasks import generation
from tasks.evidence_services import evidence_collect, sweep_overdue_evidence


# No result is stored: nothing reads it, and the write to Redis would cost every job a round trip.
@shared_task(
    name="tasks.generate_candidate", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def generate_candidate_job(*, candidate_id: int) -> str:
    """Produces one candidate (idempotent: a second delivery finds it claimed and does nothing)."""
    return generation.run_candidate(candidate_id)


@shared_task(name="tasks.sweep_stuck_candidates")
def sweep_stuck_candidates_job() -> int:
    """Re-dispatches candidates stuck in pending or running past the deadline."""
    return generation.sweep_stuck_candidates()


@shared_task(name="tasks.collect_evidence", acks_late=True, reject_on_worker_lost=True)
def collect_evidence_job(*, candidate_id: int) -> str:
    """Applies a candidate's change and runs its campaign's checks in a sandbox (idempotent: a
    second delivery finds the results stored and does nothing)."""
    return evidence_collect(candidate_id=candidate_id)


@shared_task(name="tasks.sweep_overdue_evidence")
def sweep_overdue_evidence_job() -> int:
    """Re-sends evidence jobs lost or never sent; parks evidence out of attempts."""
    return sweep_overdue_evidence()
