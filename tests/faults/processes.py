"""Real servers the fault tests start, stop and restart: Redis, PostgreSQL, gunicorn, beat."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx2
import redis

from tests.workers import ROOT, database_url_for_tests, wait_for

SERVICES = str(ROOT / "scripts" / "services.sh")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_group(
    process: subprocess.Popen, *, timeout: float = 20, signal_number: int = signal.SIGTERM
) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal_number)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class RedisServer:
    """A Redis of the test's own, so stopping it breaks nothing else; restarts on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def answers() -> bool:
            with contextlib.suppress(redis.RedisError):
                return bool(client.ping())
            return False

        wait_for(answers, timeout=10, message="redis to answer")
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process)


class LiveServer:
    """gunicorn serving the project's WSGI application, as in production, in its own group."""

    def __init__(
        self, env: dict[str, str], *, log: Path, workers: int = 1, threads: int = 6
    ) -> None:
        self.port = free_port()
        self.log = log
        self.env = {**os.environ, "DATABASE_URL": database_url_for_tests(), "LOG_LEVEL": "WARNING"}
        self.env.update(env)
        self.workers = workers
        self.threads = threads
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "marlin.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, "gunicorn exited"
            with contextlib.suppress(httpx2.TransportError):
                return httpx2.get(f"{self.url}/healthz", timeout=1).status_code == 200
            return False

        wait_for(answers, timeout=30, interval=0.2, message="gunicorn to answer")
        return self

    def worker_pids(self) -> set[int]:
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process, signal_number=signal.SIGINT)  # quick: no draining


class Beat:
    """Celery beat (the periodic sweep and friends) with a schedule file under `workdir`."""

    def __init__(self, workdir: Path, env: dict[str, str], *, log: Path | None = None) -> None:
        self.workdir = workdir
        self.env = {**os.environ, "DATABASE_URL": database_url_for_tests(), **env}
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> Beat:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "marlin.celery_app",
                "beat",
                "--loglevel=WARNING",
                f"--schedule={self.workdir / 'beat-schedule'}",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab") if self.log else None,
            stderr=subprocess.STDOUT if self.log else None,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process)


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[4]))
    if not found:
        raise RuntimeError(f"no PostgreSQL {name} under /usr/lib/postgresql")
    return str(found[-1])


class PostgresCluster:
    """A private PostgreSQL cluster (scripts/services.sh, which also starts a Redis beside it)
    holding a copy of the test database: it can be stopped without touching the suite's own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env: dict[str, str] = {}

    def start(self) -> PostgresCluster:
        subprocess.run(
            [SERVICES, "start", str(self.workdir)],
            check=True,
            env={**os.environ, "FAST_UNSAFE_PG": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for line in (self.workdir / "env").read_text().splitlines():
            name, _, value = line.partition("=")
            self.env[name] = value
        return self

    def copy_test_database(self) -> None:
        """Schema, triggers and rows of the test database (as committed so far)."""
        dump = subprocess.Popen(
            [_pg_bin("pg_dump"), "--no-owner", "--dbname", database_url_for_tests()],
            stdout=subprocess.PIPE,
        )
        subprocess.run(
            [
                _pg_bin("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--dbname",
                self.env["DATABASE_URL"],
            ],
            stdin=dump.stdout,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        assert dump.wait() == 0

    def stop_database(self) -> None:
        """A fast shutdown: PostgreSQL ends every session at once, as in a restart or failover."""
        data = (self.workdir / "pg").resolve() / "data"
        command = [_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        if os.geteuid() == 0:  # the cluster belongs to the postgres user (initdb refuses root)
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, cwd=data.parent, stdout=subprocess.DEVNULL)

    def start_database(self) -> None:
        self.start()  # starts what is not running, on the ports of the last start

    def remove(self) -> None:
        subprocess.run([SERVICES, "stop", str(self.workdir)], stderr=subprocess.DEVNULL)
        pg = self.workdir / "pg"
        if pg.is_symlink():  # the cluster lives in /tmp when postgres cannot reach workdir
            shutil.rmtree(pg.resolve(), ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
