"""What the benchmarks share: production-shaped Django on their services, an idle machine to
measure on, percentiles, the fake provider's counters, and the REST calls of the load runs.

Their processes (PostgreSQL, Redis, gunicorn, Celery, the fake model server) are the test
harness's: tests/harness.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from tests.harness.processes import ROOT
from tests.harness.servers import Gunicorn, log

PYTHON = ROOT / ".venv" / "bin" / "python"
BENCH_SECRET_KEY = "bench-generation-throwaway-secret-key-0123456789-abcdefghijklmnop"


def production_django(
    service_env: dict[str, str], *, settings_module: str = "marlin.settings", **extra: str
) -> dict[str, str]:
    """Production-shaped settings (DEBUG off, a throwaway key) against the bench's services:
    migrates their database and sets Django up in this process. Returns the environment for
    the processes the bench starts (workers, servers)."""
    env = {
        **os.environ,
        "DATABASE_URL": service_env["DATABASE_URL"],
        "REDIS_URL": service_env["REDIS_URL"],
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DEBUG": "false",
        "SECRET_KEY": BENCH_SECRET_KEY,
        "SECURE_SSL_REDIRECT": "false",
        **extra,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    os.environ.update(env)
    log("migrating")
    subprocess.run(
        [str(PYTHON), "manage.py", "migrate", "--verbosity=0"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=sys.stderr,
    )
    import django

    django.setup()
    return env


def gunicorn(env: dict[str, str], workers: int, log_path: Path) -> Gunicorn:
    """gunicorn as the load benchmarks run it: sync workers, a deep backlog for many clients.
    Started by `with`."""
    return Gunicorn(
        env, log=log_path, workers=workers, options=["--backlog", "4096", "--timeout", "60"]
    )


def fake_stats(url: str) -> dict[str, Any]:
    """The fake model server's counters: requests, successful answers, failures by status."""
    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=10) as response:
        return json.load(response)


# ------------------------------------------------------------------- CPU --


def cpu_times() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs since boot."""
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def wait_for_quiet(max_wait: float, *, busy_below: float = 0.15) -> float:
    """Waits (up to `max_wait` s) for a second in which all CPUs are mostly idle; returns the wait.

    The machine may be shared: a run that starts while something else is busy measures both.
    """
    started = time.monotonic()
    while time.monotonic() - started < max_wait:
        busy, total = cpu_times()
        time.sleep(1)
        busy_after, total_after = cpu_times()
        if (busy_after - busy) / max(total_after - total, 1) < busy_below:
            break
    else:
        log(f"warning: the machine was still busy after {max_wait:.0f} s; measuring anyway")
    return time.monotonic() - started


# ------------------------------------------------------------------- figures --


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ------------------------------------------------------------------- REST load --


class Recorder(Protocol):
    def record(self, name: str, started: float, status: int | str) -> bool: ...


async def call(client, stats: Recorder, name: str, method: str, path: str, **kwargs):
    """One request on the asyncio client; its latency and status (or the transport error's
    name) go to `stats`. None when no answer came."""
    started = time.monotonic()
    try:
        response = await client.request(method, path, **kwargs)
    except Exception as exc:  # a transport error is an error of the run, never a crash of it
        stats.record(name, started, type(exc).__name__)
        return None
    stats.record(name, started, response.status_code)
    return response


def review_from(assignment: dict[str, Any]) -> dict[str, Any]:
    """A complete review of what the assignment shows: every criterion for every slot."""
    criteria = assignment["rubric"]["criteria"]
    slots = [c["slot"] for c in assignment["task"]["turns"][0]["candidates"]]
    return {
        "scores": [
            {
                "slot": slot,
                "criterion": c["key"],
                "score": 4 if slot == "A" else 3,
                "comment": "Checked the quoting and the whitelist.",
            }
            for slot in slots
            for c in criteria
        ],
        "preference": -2,
        "rationale": "A quotes every option before the call and keeps each whitelisted pip "
        "option working; B misses the --index-url case and adds no test.",
        "verdict": "approve",
        "comments": "Both apply cleanly to the base commit.",
        "time_spent_seconds": 1500,
    }
