"""Soak: mixed load on the production shape with faults injected, then invariants over the database.

    .venv/bin/python -m bench.bench_soak [--seconds 600] [--fault-every 90] [--redis-down 10]
        [--authors 6] [--reviewers 12] [--arbiters 2] [--auditors 2] [--pause 0.3]
        [--failure-rate 0.2] [--drain-timeout 300] [--quiet-wait 60] [--keep]
        [--no-results-file]

Started here and stopped at the end, even on failure or SIGTERM: a private PostgreSQL (fsync on)
and Redis (`scripts/services.sh`, under `.local/`), gunicorn (sync workers, DEBUG=false), a
Celery prefork worker, Celery beat (the stuck-candidate sweep, the assignment expiry, the audit
sealer) and the fake model provider answering 20% of calls with 429 or 500.

Load, for `--seconds`, from one asyncio client on loopback, every role through the REST API:
  authors    keep up to three tasks going each: create (a third with a follow-up turn), ask for
             generation, poll, read the blinded candidates and submit once answered, retry a
             failed generation, revise what reviewers or an arbiter sent back (sometimes with
             one more turn to generate);
  reviewers  claim next -> read -> submit (bench_load's payload, every turn), with an
             Idempotency-Key retried once on a transport error; a few release their claim or
             walk away from it (the campaign's lease is one minute, so the expiry job reopens
             it); the reviews of some tasks split on preference and scores, or ask for
             changes, or reject, so rounds reach arbitration, revision and rejection;
  arbiters   list open arbitrations, claim one (409 when another arbiter was first), resolve
             it with scores or send it back;
  auditors   read task histories and the task's audit events, and verify the chain now and then.
Faults, every `--fault-every` seconds in turn from half that: the Celery worker SIGKILLed (its
whole process group, mid-job: it waits up to 60 s for a job to run) and a new one started;
Redis stopped, `--redis-down` seconds without it, started again on the same port (it keeps
nothing: every queued message is lost). A worker found dead before its kill, or at the end,
exited by itself: the run fails.

Then the load stops and the system drains (bounded by `--drain-timeout`): until no task is
generating and the expiry job has caught up with abandoned claims; the sweep is run directly once
if generation still hangs halfway. The invariants of operations/invariants.py are then checked over
the whole database. Prints JSON, writes `bench/results/soak.md`, exits 1 if an invariant fails.

The parts: bench/soak/load.py (the clients), faults.py (the faults and the settings that make
lost work visible within the run), checks.py (the drain, the database's counts), report.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import signal
import sys
import time
from datetime import datetime
from typing import Any

from bench.common import ROOT, fake_stats, gunicorn, log, production_django, wait_for_quiet
from bench.run_all import machine
from bench.soak.checks import STUCK_GRACE, database_counts, drain
from bench.soak.faults import SOAK_SETTINGS, Workers, inject_faults, restart_redis
from bench.soak.load import Load, SoakStats, build_world, run_load
from bench.soak.report import by_role, markdown, summarise_errors, tree_state
from tests.harness.servers import FakeModelServerProcess, local_services
from tests.harness.workers import Beat

RESULTS = ROOT / "bench" / "results" / "soak.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--fault-every", type=float, default=90)
    parser.add_argument("--redis-down", type=float, default=10)
    parser.add_argument("--authors", type=int, default=6)
    parser.add_argument("--reviewers", type=int, default=12)
    parser.add_argument("--arbiters", type=int, default=2)
    parser.add_argument("--auditors", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.3, help="think time between requests")
    parser.add_argument("--latency", type=float, default=0.2, help="fake provider, seconds")
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument(
        "--quiet-wait", type=float, default=60, help="first wait up to this long for idle CPUs"
    )
    parser.add_argument("--keep", action="store_true", help="keep the services' folder and logs")
    parser.add_argument("--no-results-file", action="store_true")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = " ".join([".venv/bin/python -m bench.bench_soak", *(argv or sys.argv[1:])])
    began = time.monotonic()
    tree = tree_state()  # what the processes started below run

    with local_services("bench-soak.", keep=options.keep) as services:
        folder = services.folder
        env = production_django(services.env, **SOAK_SETTINGS)
        from core import context
        from operations import invariants

        with contextlib.ExitStack() as stack:
            fake = stack.enter_context(
                FakeModelServerProcess(options.latency, failure_rate=options.failure_rate, env=env)
            )
            with context.operation(
                origin="command:bench_soak", actor_label=f"os:{getpass.getuser()}"
            ):
                world = build_world(fake.url, options)
            workers = Workers(env, folder / "worker.log")
            stack.callback(workers.stop)
            beat = Beat(folder, env, log=folder / "beat.log").start()
            stack.callback(beat.stop)
            url = stack.enter_context(
                gunicorn(env, options.web_workers, folder / "gunicorn.log")
            ).url
            wait_for_quiet(options.quiet_wait)
            load = Load(world, SoakStats(), time.monotonic() + options.seconds, options.pause)
            actions = {
                "worker SIGKILL": lambda: workers.kill_and_replace(wait_until=load.stop - 5),
                "Redis restart": lambda: restart_redis(services, options.redis_down),
            }
            faults: list[dict[str, Any]] = []
            log(f"load for {options.seconds:.0f} s")
            started = time.monotonic()
            injected = inject_faults(load, started, options.fault_every, actions, faults)
            asyncio.run(run_load(url, load, injected))
            log(f"load over: {dict(load.done)}; draining")
            drained = drain(options.drain_timeout)
            workers.alive()  # the last one, too, must have lived to the end
            log(f"drained: {drained}; checking the invariants")
            with context.operation(origin="command:bench_soak", actor_label="system"):
                checks = [c.as_dict() for c in invariants.check_all(grace=STUCK_GRACE)]
            provider = fake_stats(fake.url)
            counts = database_counts()

    endpoints = load.stats.endpoints()
    errors, unexpected = summarise_errors(endpoints)
    failed = [c["name"] for c in checks if not c["ok"]]
    if workers.exited_by_themselves:
        failed.append(f"{len(workers.exited_by_themselves)} worker(s) exited by themselves")
    report = {
        "benchmark": "soak",
        "command": command,
        "tree": tree,
        "machine": machine(),
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "wall_minutes": round((time.monotonic() - began) / 60, 1),
        "seconds": options.seconds,
        "web_workers": options.web_workers,
        "latency_s": options.latency,
        "failure_rate": options.failure_rate,
        "load": {
            "clients": {
                "authors": options.authors,
                "reviewers": options.reviewers,
                "arbiters": options.arbiters,
                "auditors": options.auditors,
            },
            "by_role": by_role(load.done),
        },
        "faults": faults,
        "workers_started": workers.started,
        "workers_exited_by_themselves": workers.exited_by_themselves,
        "provider": provider,
        "endpoints": endpoints,
        "errors_by_status": errors,
        "unexpected_errors": unexpected,
        "error_samples": load.stats.samples,
        "drain": drained,
        "database": counts,
        "invariants": checks,
        "verdict": (
            "PASS: every invariant holds (0 lost or duplicated records, nothing stuck)"
            if not failed
            else f"FAIL: {', '.join(failed)}"
        ),
    }
    print(json.dumps(report, indent=2, default=str))
    if not options.no_results_file:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(markdown(report))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
