"""Servers the tests and benchmarks start, stop and restart: PostgreSQL and Redis under one folder
(scripts/services.sh), a bare Redis, gunicorn, and the fake model server as a process."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2
import redis

from tests.harness.processes import ROOT, free_port, pid_in, read_env, stop_group, wait_for

SERVICES = str(ROOT / "scripts" / "services.sh")


def log(message: str) -> None:
    print(f"{Path(sys.argv[0]).stem}: {message}", file=sys.stderr, flush=True)


def local_folder(prefix: str) -> Path:
    """A fresh folder `prefix…` under the checkout's .local/ (which git ignores)."""
    (ROOT / ".local").mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=ROOT / ".local"))


def pg_bin(name: str) -> str:
    """The newest PostgreSQL's `name` (pg_dump, psql, pg_ctl)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[4]))
    if not found:
        raise RuntimeError(f"no PostgreSQL {name} under /usr/lib/postgresql")
    return str(found[-1])


class Services:
    """A private PostgreSQL cluster and Redis under `folder` (scripts/services.sh): stopping them
    touches nothing else. `env` holds their DATABASE_URL and REDIS_URL once started. `quiet`
    silences the script; otherwise what it prints goes to stderr (stdout may carry a report)."""

    def __init__(self, folder: Path, *, unsafe_pg: bool = False, quiet: bool = False) -> None:
        self.folder = folder
        self.unsafe_pg = unsafe_pg
        self.quiet = quiet
        self.env: dict[str, str] = {}

    def _run(self, command: str, *, quiet: bool, check: bool) -> int:
        return subprocess.run(
            [SERVICES, command, str(self.folder)],
            check=check,
            env={**os.environ, "FAST_UNSAFE_PG": "1" if self.unsafe_pg else "0"},
            stdout=subprocess.DEVNULL if quiet else sys.stderr,
            stderr=subprocess.DEVNULL if quiet else None,
        ).returncode

    def start(self, *, quiet: bool | None = None) -> Services:
        """Starts whatever is not running, on the ports of the last start if there was one."""
        self._run("start", quiet=self.quiet if quiet is None else quiet, check=True)
        self.env = read_env(self.folder / "env")
        return self

    def stop(self) -> bool:
        if self._run("stop", quiet=self.quiet, check=False):
            if not self.quiet:
                log(f"warning: could not stop the services in {self.folder}")
            return False
        return True

    def remove(self) -> None:
        """Stops them and deletes the folder (and the cluster, wherever it lives)."""
        self.stop()
        pg = self.folder / "pg"
        if pg.is_symlink():  # the cluster lives in /tmp when postgres cannot reach the folder
            shutil.rmtree(pg.resolve(), ignore_errors=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def postmaster_pid(self) -> int:
        return pid_in(self.folder / "pg" / "data" / "postmaster.pid")

    @property
    def redis_pid(self) -> int:
        return pid_in(self.folder / "redis" / "redis.pid")

    def copy_database(self, source_url: str) -> None:
        """Schema, triggers and rows of the database at `source_url` (as committed so far)."""
        dump = subprocess.Popen(
            [pg_bin("pg_dump"), "--no-owner", "--dbname", source_url], stdout=subprocess.PIPE
        )
        subprocess.run(
            [
                pg_bin("psql"),
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
        """A fast shutdown: PostgreSQL ends every session at once, as in a restart or failover.
        start() brings it back on the same port."""
        data = (self.folder / "pg").resolve() / "data"
        command = [pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        if os.geteuid() == 0:  # the cluster belongs to the postgres user (initdb refuses root)
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, cwd=data.parent, stdout=subprocess.DEVNULL)

    def stop_redis(self, *, timeout: float = 10) -> int:
        """SIGTERMs the Redis and waits (up to `timeout`) for it to exit; returns its pid.
        start() brings it back on the same port, empty."""
        pid = self.redis_pid
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        return pid


@contextlib.contextmanager
def local_services(
    prefix: str, *, unsafe_pg: bool = False, keep: bool = False
) -> Iterator[Services]:
    """Services in a fresh folder under .local/, stopped at the end, even on failure; the folder
    (logs, data) is deleted unless `keep`."""
    services = Services(local_folder(prefix), unsafe_pg=unsafe_pg)
    try:
        yield services.start()
    finally:
        if keep:
            services.stop()
            log(f"kept {services.folder}")
        else:
            services.remove()


class RedisServer:
    """A bare Redis of the caller's own, so stopping it breaks nothing else; restarts on the same
    port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

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

        try:
            wait_for(answers, timeout=10, message="redis to answer")
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


class Gunicorn:
    """gunicorn serving the project's WSGI application, as in production, in its own process
    group. `env` is laid over this process's environment; `options` are more gunicorn flags.
    stop() sends SIGTERM (the workers finish their requests), or SIGINT if `quick_stop`."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        log: Path,
        workers: int = 1,
        options: Sequence[str] = (),
        quick_stop: bool = False,
    ) -> None:
        self.env = {**os.environ, **env}
        self.log = log
        self.workers = workers
        self.options = list(options)
        self.quick_stop = quick_stop
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        with self.log.open("ab") as log_file:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "gunicorn"),
                    "marlin.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    str(self.workers),
                    "--graceful-timeout",
                    "5",
                    *self.options,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log}")
            with contextlib.suppress(httpx2.TransportError):
                return httpx2.get(f"{self.url}/healthz", timeout=1).status_code == 200
            return False

        try:
            wait_for(answers, timeout=30, message="gunicorn to answer")
        except BaseException:
            self.stop()
            raise
        return self

    def worker_pids(self) -> set[int]:
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def stop(self) -> None:
        if self.process is None:
            return
        if self.quick_stop:  # no draining
            stop_group(self.process, signal_number=signal.SIGINT)
        else:
            stop_group(self.process, timeout=30)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeModelServerProcess:
    """tests.fakes.model_server as a process of its own (`failure_rate` of its answers 429 or
    500): `url` once it said READY."""

    def __init__(
        self, latency: float, *, failure_rate: float = 0.0, env: Mapping[str, str] | None = None
    ) -> None:
        self.latency = latency
        self.failure_rate = failure_rate
        self.env = {**os.environ, **(env or {})}
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> FakeModelServerProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.model_server",
                "--port",
                "0",
                "--latency",
                str(self.latency),
                "--failure-rate",
                str(self.failure_rate),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert self.process.stdout is not None
            ready, _, _ = select.select([self.process.stdout], [], [], 30)
            line = self.process.stdout.readline() if ready else ""
            if not line.startswith("READY "):
                raise RuntimeError(f"the fake model server did not start (said {line!r})")
        except BaseException:
            self.stop()
            raise
        self.url = line.split()[1]
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, timeout=10)

    def __enter__(self) -> FakeModelServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
