"""Real Celery worker processes for integration tests, on the test database and broker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

from marlin.celery_app import app

ROOT = Path(__file__).resolve().parent.parent


def database_url_for_tests() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


class Worker:
    def __init__(self, *, concurrency: int = 2, env: dict[str, str] | None = None) -> None:
        self.concurrency = concurrency
        self.env = {**os.environ, "DATABASE_URL": database_url_for_tests(), **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "marlin.celery_app",
                "worker",
                "--pool=prefork",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
                "-Q",
                app.conf.task_default_queue,
            ],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,  # its own process group, so kill() reaches the pool children
        )
        return self

    def kill(self) -> None:
        """Dies at once, mid-job, like a lost machine: no acknowledgement, no clean-up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


def wait_for(predicate, *, timeout: float, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
