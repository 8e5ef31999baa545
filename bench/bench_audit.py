"""Does sealing slow writers down? And how long do sealing and verifying 100,000 entries take?

    .venv/bin/python -m bench.bench_audit [--writes N] [--writers 1,4,8] [--events N]

Starts its own PostgreSQL (and Redis) with `scripts/services.sh start .local/bench-audit.XXXX`,
migrates it (DEBUG=true, DJANGO_SETTINGS_MODULE=marlin.settings), and stops and removes it at
the end. PostgreSQL runs with its default durability (fsync on, synchronous commit).

1. Writers: 1, 4 and 8 processes, each doing N small audited updates of its own repository
   (`Repository.objects.filter(pk=...).update(...)`, one transaction each: audit context, update,
   trigger, audit row). Run with no sealer, then with a sealer running beside them every 1 s
   (ten times the beat's rate) and in a tight loop (0 s: the worst case, which on a small
   machine mostly measures the CPU the sealer's polling takes). Reports writes/s, median and p95
   latency.
2. 100,000 entries (bulk updates through the trigger), then the time to seal them all and to
   verify the whole chain (goal: verify under 10 s).

Prints a JSON report.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.harness.servers import local_services

ROOT = Path(__file__).resolve().parent.parent
VERIFY_GOAL_SECONDS = 10.0


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(
        DATABASE_URL=env["DATABASE_URL"],
        REDIS_URL=env["REDIS_URL"],
        DEBUG="true",
        DJANGO_SETTINGS_MODULE="marlin.settings",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()


def writer(repository_id: int, writes: int, start: Any, results: Any) -> None:
    """One process: `writes` audited single-row updates, each its own transaction."""
    from django.db import connection

    from core import context
    from tasks.models import Repository

    latencies = []
    with context.operation(origin="command:bench", actor_label="bench"):
        connection.ensure_connection()
        start.wait()
        for n in range(writes):
            began = time.perf_counter()
            Repository.objects.filter(pk=repository_id).update(language=f"v{n}")
            latencies.append(time.perf_counter() - began)
    connection.close()
    results.put(latencies)


def sealer(stop: threading.Event, sealed: list[int], every: float) -> None:
    from django.db import connection

    from audit import services

    while not stop.is_set():
        sealed.append(services.audit_seal_all(max_rows=1000))
        stop.wait(every)
    connection.close()


def run_writers(
    repository_ids: list[int], writes: int, *, seal_every: float | None
) -> dict[str, Any]:
    from django.db import connections

    from audit import services

    services.audit_seal_all()
    connections.close_all()  # forked writers must not share the parent's connection
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=writer, args=(pk, writes, start, results)) for pk in repository_ids
    ]
    for process in processes:
        process.start()
    stop, sealed = threading.Event(), []
    thread = None
    if seal_every is not None:
        thread = threading.Thread(target=sealer, args=(stop, sealed, seal_every))
    time.sleep(1.0)  # every writer connected
    if thread:
        thread.start()
    began = time.perf_counter()
    start.set()
    latencies = [x for _ in processes for x in results.get(timeout=600)]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
    if thread:
        stop.set()
        thread.join()
    latencies.sort()
    return {
        "writers": len(repository_ids),
        "sealer_every_s": seal_every,
        "writes": len(latencies),
        "writes_per_s": round(len(latencies) / elapsed),
        "median_ms": round(statistics.median(latencies) * 1000, 3),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 3),
        "sealed_meanwhile": sum(sealed),
    }


def seal_and_verify(events: int) -> dict[str, Any]:
    from django.db import connection

    from audit import services
    from tasks.models import Repository

    services.audit_seal_all()
    per_round = 1000
    Repository.objects.bulk_create(
        Repository(full_name=f"bench/bulk-{n}", url=f"https://example.org/bulk/{n}")
        for n in range(per_round)
    )
    with connection.cursor() as cursor:
        for n in range(events // per_round - 1):  # the inserts were one round already
            cursor.execute(
                "UPDATE tasks_repository SET language = %s WHERE full_name LIKE 'bench/bulk-%%'",
                [f"v{n}"],
            )
        cursor.execute("SELECT count(*) FROM audit_event e WHERE NOT EXISTS "
                       "(SELECT 1 FROM audit_seal s WHERE s.event_id = e.id)")  # fmt: skip
        pending = cursor.fetchone()[0]
        cursor.execute("VACUUM ANALYZE audit_event")
    began = time.perf_counter()
    sealed = services.audit_seal_all()
    seal_seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_seal")
    began = time.perf_counter()
    report = services.audit_verify()
    verify_seconds = time.perf_counter() - began
    return {
        "pending_before": pending,
        "sealed": sealed,
        "seal_seconds": round(seal_seconds, 2),
        "seals_per_s": round(sealed / seal_seconds),
        "verify_checked": report["checked"],
        "verify_ok": report["ok"],
        "verify_seconds": round(verify_seconds, 2),
        "verify_goal_seconds": VERIFY_GOAL_SECONDS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=2000, help="updates per writer")
    parser.add_argument("--writers", default="1,4,8")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--seal-every",
        default="1,0",
        type=lambda text: [float(x) for x in text.split(",")],
        help="sealer pauses to compare with no sealer (0: a tight loop); the beat uses 10",
    )
    args = parser.parse_args()
    with local_services("bench-audit.") as services:
        try:
            setup_django(services.env)
            from django.core.management import call_command

            from tasks.models import Repository

            call_command("migrate", verbosity=0)
            counts = [int(n) for n in args.writers.split(",")]
            repositories = [
                Repository.objects.create(full_name=f"bench/writer-{n}", url=f"https://x.org/{n}")
                for n in range(max(counts))
            ]
            runs = []
            for count in counts:
                for seal_every in (None, *args.seal_every):
                    ids = [r.pk for r in repositories[:count]]
                    runs.append(run_writers(ids, args.writes, seal_every=seal_every))
                    print(json.dumps(runs[-1]), file=sys.stderr)
            chain = seal_and_verify(args.events)
            report = {"cpus": os.cpu_count(), "writers": runs, "seal_and_verify": chain}
            print(json.dumps(report, indent=2))
            return 0 if chain["verify_ok"] and chain["verify_seconds"] < VERIFY_GOAL_SECONDS else 1
        finally:
            from django.db import connections

            connections.close_all()


if __name__ == "__main__":
    sys.exit(main())
