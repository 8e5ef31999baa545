"""What every process the tests and benchmarks start needs: a port, a way to wait, a way to stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(
    process: subprocess.Popen[Any],
    *,
    timeout: float = 20,
    signal_number: int = signal.SIGTERM,
) -> None:
    """Sends `signal_number` to the process group `process` leads (it was started with
    start_new_session), and SIGKILL after `timeout` seconds if it has not exited by then."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal_number)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process, timeout=None)


def kill_group(process: subprocess.Popen[Any], *, timeout: float | None = 10) -> None:
    """SIGKILLs the whole process group at once (its children too), like a lost machine."""
    with contextlib.suppress(ProcessLookupError):  # the group may be gone already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)


def wait_for(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.1, message: str = "condition"
) -> T:
    """Calls `predicate` until it returns something true, and returns that; AssertionError after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def read_env(path: Path) -> dict[str, str]:
    """NAME=value lines (as scripts/services.sh writes them) as a dict."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def pid_in(path: Path) -> int:
    """The pid a pid file (postmaster.pid, redis.pid) starts with."""
    return int(path.read_text().split()[0])
