"""A job that proves the whole path: broker, a worker, its database, and the job context."""

import socket

from celery import shared_task
from django.db import connection

from core import context


@shared_task(name="marlin.probe")
def probe_job() -> dict[str, str | None]:
    """Reads the database the worker is connected to; no side effects."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), now()::text")
        database, now = cursor.fetchone()
    op = context.current()
    return {
        "worker": socket.gethostname(),
        "database": database,
        "database_time": now,
        "operation_id": op.operation_id if op else None,
        "origin": op.origin if op else None,
    }
