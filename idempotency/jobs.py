"""Celery jobs of the idempotency app."""

from celery import shared_task

from idempotency import services


@shared_task(name="idempotency.prune")
def prune_idempotency_records_job() -> int:
    """Deletes idempotency records older than the TTL; returns how many were deleted."""
    return services.prune_idempotency_records()
