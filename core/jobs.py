"""Sending a job by the stable name it is registered under.

A service queues the job that will call it back. Importing the job's module from the service
would close an import cycle (jobs import services), so the job is found by name when it is sent;
each app's `ready()` imports its `jobs` module, so the name is always registered.
"""

from typing import Any

from celery import current_app


def send_job(name: str, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Queues job `name` with keyword arguments; raises the broker's error when it is down."""
    current_app.tasks[name].apply_async(kwargs=kwargs, countdown=countdown)
