"""Celery jobs of the review pipeline."""

from celery import shared_task

from reviews import services


@shared_task(name="reviews.expire_assignments")
def expire_assignments_job() -> int:
    """Expires review claims past their due time; their slots go back to the queue."""
    return services.assignments_expire_due()
