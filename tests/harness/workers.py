"""Celery worker and beat processes, each in its own process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marlin.celery_app import app
from tests.harness.processes import ROOT, kill_group, stop_group


def _celery(command: list[str], env: dict[str, str], log: Path | None) -> subprocess.Popen[bytes]:
    """`celery -A marlin.celery_app COMMAND…` in its own process group (so that a signal to the
    group reaches the pool's children), its output to `log` if given."""
    stdout = log.open("ab") if log else None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "marlin.celery_app", *command],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout else None,
            start_new_session=True,
        )
    finally:
        if stdout is not None:
            stdout.close()  # the child has its own copy


class Worker:
    """A Celery prefork worker on the default queue. `env` is laid over this process's
    environment; its output goes to `log` if given. `heartbeat=False` also turns off its event
    heartbeats (with gossip and mingle off, it then sends no events at all).

    start() may be called again after kill() or stop(): a new worker in place of the old."""

    def __init__(
        self,
        *,
        concurrency: int = 2,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        heartbeat: bool = True,
    ) -> None:
        self.concurrency = concurrency
        self.env = {**os.environ, **(env or {})}
        self.log = log
        self.heartbeat = heartbeat
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self.process = _celery(
            [
                "worker",
                "--pool=prefork",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                *([] if self.heartbeat else ["--without-heartbeat"]),
                "--loglevel=WARNING",
                "-Q",
                app.conf.task_default_queue,
            ],
            self.env,
            self.log,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def poll(self) -> int | None:
        """Its exit status if it has exited, else None."""
        assert self.process is not None
        return self.process.poll()

    def kill(self) -> None:
        """Dies at once, mid-job, like a lost machine: no acknowledgement, no clean-up."""
        assert self.process is not None
        kill_group(self.process)

    def stop(self) -> None:
        """SIGTERM (a warm shutdown: running jobs finish), SIGKILL after 30 s."""
        if self.process is not None:
            stop_group(self.process, timeout=30)

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Beat:
    """Celery beat (the periodic sweep and friends) with a schedule file under `workdir`; `env`
    is laid over this process's environment, its output goes to `log` if given."""

    def __init__(self, workdir: Path, env: Mapping[str, str], *, log: Path | None = None) -> None:
        self.workdir = workdir
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Beat:
        self.process = _celery(
            ["beat", "--loglevel=WARNING", f"--schedule={self.workdir / 'beat-schedule'}"],
            self.env,
            self.log,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
