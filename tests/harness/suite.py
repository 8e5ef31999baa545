"""What only the test suite needs of the harness: the processes it starts work on its test
database (not the DATABASE_URL in the environment, whose name pytest-django prefixes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from django.db import connection

from tests.harness.servers import Gunicorn


def database_url_for_tests() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def on_test_database(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` on the test database: for a Worker, Beat or Gunicorn the test starts."""
    return {"DATABASE_URL": database_url_for_tests(), **(env or {})}


def live_server(env: Mapping[str, str], *, log: Path) -> Gunicorn:
    """gunicorn as the fault tests run it: one worker of six threads, quiet, stopped at once."""
    return Gunicorn(
        on_test_database({"LOG_LEVEL": "WARNING", **env}),
        log=log,
        options=["--threads", "6", "--log-level", "warning"],
        quick_stop=True,
    )
