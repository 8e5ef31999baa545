"""The Celery app. Job modules are each app's `jobs.py`; every job runs as one audited operation."""

import logging
import os
import time
from typing import Any

from celery import Celery, signals

from core import context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marlin.settings")

app = Celery("marlin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")
app.conf.include = ["operations.probes"]

logger = logging.getLogger("marlin.job")
_running: dict[str, tuple[Any, float]] = {}


@signals.setup_logging.connect
def _use_django_logging(**kwargs: Any) -> None:
    # Keep Django's JSON logging configuration in workers instead of Celery's own.
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.worker_init.connect
def _import_provider_sdks(**kwargs: Any) -> None:
    # Once in the parent, before the pool forks: otherwise every pool process pays the SDKs'
    # import (1 to 3 s) on its first job.
    import tasks.providers.anthropic_provider
    import tasks.providers.openai_provider  # noqa: F401


@signals.task_failure.connect
def _drop_connections_after_a_failure(**kwargs: Any) -> None:
    # A job that failed may have left its connection mid-transaction; never reuse it.
    from django.db import connections

    connections.close_all()


@signals.task_prerun.connect
def _enter_job(task_id: str, task: Any, **kwargs: Any) -> None:
    from django.db import close_old_connections

    close_old_connections()  # as Django does per request: honours CONN_MAX_AGE and health checks

    manager = context.operation(
        origin=f"job:{task.name}", operation_id=task_id, actor_label="system"
    )
    manager.__enter__()
    _running[task_id] = (manager, time.perf_counter())


@signals.task_postrun.connect
def _leave_job(task_id: str, task: Any, state: str | None = None, **kwargs: Any) -> None:
    manager, started = _running.pop(task_id, (None, time.perf_counter()))
    logger.info(
        "job",
        extra={
            "job": task.name,
            "state": state,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "retries": task.request.retries,
        },
    )
    if manager is not None:
        manager.__exit__(None, None, None)
