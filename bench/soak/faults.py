"""The soak's faults, in turn: the Celery worker SIGKILLed mid-job and replaced, and Redis stopped
and started again empty on the same port; and the settings that let the service find lost work
again within the run."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import log
from bench.soak.load import Load
from tests.harness.servers import Services
from tests.harness.workers import Worker

# Settings of every process: fast retries and a short stuck deadline, so that work lost with a
# killed worker or a restarted Redis is found again within the run (not after the 5-min default).
SOAK_SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "GENERATION_MAX_ATTEMPTS": "3",
    "GENERATION_BACKOFF_BASE": "0.5",
    "GENERATION_BACKOFF_MAX": "5",
    "GENERATION_TIMEOUT_SECONDS": "10",
    "GENERATION_STUCK_AFTER_SECONDS": "30",
    "GENERATION_SWEEP_EVERY_SECONDS": "10",
    **{
        f"THROTTLE_{role}": "1000000/min"
        for role in ("USER", "AUTHOR", "REVIEWER", "ARBITER", "AUDITOR", "LEAD")
    },
}


class Workers:
    """The Celery worker, which a fault may SIGKILL and replace. A worker found dead before its
    kill (or at the end) exited by itself: the soak fails, as a fault the service did not survive."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.worker = Worker(concurrency=4, env=env, log=log_path, heartbeat=False)
        self.started = 0
        self.exited_by_themselves: list[int] = []  # their exit statuses
        self.start()

    def alive(self) -> bool:
        """Whether the current worker runs; notes it as exited by itself if not (call once per
        worker: before its kill, or at the end)."""
        status = self.worker.poll()
        if status is not None:
            self.exited_by_themselves.append(status)
        return status is None

    def start(self) -> None:
        self.worker.start()
        self.started += 1

    def stop(self) -> None:
        self.worker.stop()

    def kill_and_replace(self, *, wait_until: float) -> str:
        """SIGKILLs the worker's process group mid-job: waits for a job to run, up to 60 s and not
        past `wait_until` (monotonic). Generation comes in bursts (authors wait on their reviews)."""
        running = wait_for_candidates(
            state="running", timeout=max(0.0, min(60.0, wait_until - time.monotonic()))
        )
        killed = self.worker.pid
        if self.alive():
            what = f"killed pid {killed} and its pool with {running} jobs running"
        else:
            what = f"worker pid {killed} had exited by itself (status {self.worker.poll()})"
        self.worker.kill()  # the whole group: its pool may outlive it
        time.sleep(2)  # as long as a supervisor takes to notice
        self.start()
        return f"{what}; worker #{self.started} started"


def wait_for_candidates(*, timeout: float, **lookup: Any) -> int:
    """How many candidates match `lookup`, polled until some do or `timeout` passes."""
    from django.db import connections

    from tasks.models import Candidate

    deadline = time.monotonic() + timeout
    try:
        while (found := Candidate.objects.filter(**lookup).count()) == 0:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        connections.close_all()  # this thread's only: faults run in a thread of their own
    return found


def restart_redis(services: Services, down_seconds: float) -> str:
    """Stops the bench's Redis, waits, and starts it again on the same port (services.sh)."""
    pid = services.stop_redis()
    time.sleep(down_seconds)
    services.start(quiet=True)
    # First turns asked for while the broker was down: left for the sweep to send.
    unsent = wait_for_candidates(
        state="pending", dispatched_at__isnull=True, turn__index=1, timeout=0
    )
    return (
        f"stopped pid {pid}, down {down_seconds:.0f} s, started on the same port; "
        f"{unsent} first-turn candidates left unsent for the sweep"
    )


async def inject_faults(
    load: Load, started: float, every: float, actions: dict[str, Any], faults: list[dict]
) -> None:
    kinds = itertools.cycle(actions)
    due = started + every / 2
    while due < load.stop - 5:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        kind = next(kinds)
        at = time.monotonic()
        clock = datetime.now().astimezone().isoformat(timespec="seconds")
        log(f"fault at {at - started:.0f} s: {kind}")
        detail = await asyncio.to_thread(actions[kind])
        faults.append(
            {
                "at_s": round(at - started, 1),
                "clock": clock,
                "fault": kind,
                "took_s": round(time.monotonic() - at, 1),
                "detail": detail,
            }
        )
        due += every
