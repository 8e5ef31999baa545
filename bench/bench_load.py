"""Reviewer load on the production shape, and the main endpoints as the data grows.

    .venv/bin/python -m bench.bench_load [--reviewers 10 50 200] [--seconds 15] [--warmup 3]
        [--paused-reviewers 50] [--paused-seconds 30] [--growth-reviews 1000000]
        [--web-workers 5] [--keep] [--no-results-file]

Started here and stopped at the end, even on failure or SIGTERM: a private PostgreSQL (fsync on)
and Redis (`scripts/services.sh`, in a temporary folder under `.local/`), gunicorn with sync
workers on production settings (DEBUG=false), and a Celery worker. The load comes from this
process: one asyncio client (httpx2) on loopback with one coroutine per simulated reviewer.

Data: a campaign of three reviewers per task over a four-criterion rubric; tasks in review with
two answers of ~300-line diffs each, copied in SQL from a template made through the services
(bench/load_data.py), with their audit entries written by the triggers.

Runs, each measured after `--warmup` seconds for `--seconds` seconds:
  growth @1k      10 reviewers in a closed loop and one lead reading task histories, with about
                  1,000 reviews in the database
  closed N        N reviewers, each looping claim next -> read the assignment -> submit a review
                  (scores for both slots on every criterion), no pauses: the maximum; warm-up
                  and window grow with N (+0.1 s and 0.25 s per reviewer) so that cycles queued
                  behind the others still finish inside the window
  ceiling N       the same N clients looping `GET /api/v1/me/` on the same gunicorn
  paused          50 reviewers pausing 1 s after each request: latency at a human pace
  growth @1M      as growth @1k after copying completed tasks up to `--growth-reviews` reviews
Figures: reviews/s, requests/s, p50/p95/p99 per endpoint, errors (any status other than the
expected, or a transport error), peak RSS of the gunicorn workers, and the cycle's requests/s
as a fraction of the ceiling at the same N; CPU-ms per request of the web workers, PostgreSQL,
the client and the whole machine in each window, and the fraction from the machine's CPU per
request (the same as the fraction while both runs keep the CPUs busy; where they differ, one
run was not CPU-bound). EXPLAIN plans of the claim and history queries at the end. Prints
JSON, writes `bench/results/load.md`; exits 1 when a goal (GOALS) is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    call,
    gunicorn,
    percentile,
    production_django,
    review_from,
    wait_for_quiet,
)
from tests.harness.servers import local_services
from tests.harness.workers import Worker

RESULTS = ROOT / "bench" / "results" / "load.md"
EXPECTED = {"next": {201, 204}, "detail": {200}, "review": {201}, "me": {200}, "history": {200}}
# (figure in report["goals"], its goal, whether the figure must stay at or under the goal)
GOALS = (
    ("errors_at_max_n", 0, True),
    ("min_fraction", 0.5, False),
    ("paused_review_p99_ms", 250, True),
    ("max_growth_p50_ratio", 1.5, True),
)


def log(message: str) -> None:
    print(f"bench_load: {message}", file=sys.stderr, flush=True)


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def peak_rss_mib(master: subprocess.Popen) -> dict[str, float]:
    """Peak resident memory (VmHWM) of each gunicorn worker so far."""
    peaks = []
    for pid in _children(master.pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return {"max_worker": round(max(peaks), 1), "all_workers": round(sum(peaks), 1)}


# CPU time of each part during a measured window: on 2 CPUs the web workers, PostgreSQL and the
# load client share the machine, so CPU-ms per request says where a request's cost goes. Name ->
# root pid of a process tree (the client is this process alone: the others are its children).
CPU_TREES: dict[str, int] = {}


def _process_tree(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += _children(current)
    return found


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each tree in CPU_TREES, by this process (the client) and by the
    whole machine (busy time of all CPUs, stolen time excluded)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, root in CPU_TREES.items():
        total = 0
        for pid in _process_tree(root):
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                # utime and stime, and cutime and cstime: the time of children that ended and
                # were reaped (PostgreSQL backends of closed connections), each counted once.
                total += sum(int(value) for value in fields[11:15])
        used[name] = total / tick
    own = os.times()
    used["client"] = own.user + own.system
    cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, _steal = cpu
    used["machine"] = (user + nice + system + irq + softirq) / tick
    return used


# ------------------------------------------------------------------- the load --


class Stats:
    def __init__(self, window: tuple[float, float]) -> None:
        self.window = window
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []
        self.requests = 0
        self.reviews = 0
        self.empty = 0
        self.cpu: dict[str, float] = {}

    def record(self, name: str, started: float, status: int | str) -> bool:
        ended = time.monotonic()
        ok = status in EXPECTED[name]
        if self.window[0] <= ended <= self.window[1]:
            self.requests += 1
            self.latencies[name].append((ended - started) * 1000)
            if not ok:
                self.errors[name] += 1
            if name == "review" and ok:
                self.reviews += 1
            if name == "next" and status == 204:
                self.empty += 1
        if not ok and len(self.error_samples) < 10:
            self.error_samples.append(f"{name}: {status}")
        return ok

    def summary(self) -> dict[str, Any]:
        seconds = self.window[1] - self.window[0]
        return {
            "seconds": round(seconds, 1),
            "reviews_per_s": round(self.reviews / seconds, 2),
            "requests_per_s": round(self.requests / seconds, 1),
            "errors": sum(self.errors.values()),
            "error_samples": self.error_samples,
            "empty_queue": self.empty,
            "cpu_ms_per_request": {
                name: round(seconds * 1000 / max(self.requests, 1), 2)
                for name, seconds in self.cpu.items()
            },
            "endpoints": {
                name: {
                    "count": len(values),
                    "p50_ms": round(percentile(values, 0.50), 1),
                    "p95_ms": round(percentile(values, 0.95), 1),
                    "p99_ms": round(percentile(values, 0.99), 1),
                }
                for name, values in sorted(self.latencies.items())
            },
        }


async def reviewer(client, token: str, campaign: int, stats: Stats, stop: float, pause: float):
    headers = {"Authorization": f"Token {token}"}
    # People pausing between requests do not start in step: their starts spread over one pause
    # (as a load tool's spawn rate spreads them). Started together, every request of the paused
    # run would arrive in a burst of N and its latency would be the time to drain the burst.
    await asyncio.sleep(random.uniform(0, pause))
    while time.monotonic() < stop:
        claimed = await call(
            client, stats, "next", "POST", "/api/v1/assignments/next/",
            json={"campaign": campaign}, headers=headers,
        )  # fmt: skip
        if claimed is None or claimed.status_code != 201:
            await asyncio.sleep(max(pause, 0.05))
            continue
        assignment_id = claimed.json()["id"]
        await asyncio.sleep(pause)
        detail = await call(
            client, stats, "detail", "GET", f"/api/v1/assignments/{assignment_id}/",
            headers=headers,
        )  # fmt: skip
        if detail is None or detail.status_code != 200:
            continue
        body = review_from(detail.json())
        await asyncio.sleep(pause)
        await call(
            client, stats, "review", "POST", f"/api/v1/assignments/{assignment_id}/review/",
            json=body, headers=headers,
        )  # fmt: skip
        await asyncio.sleep(pause)


async def reader(client, token: str, path: str, name: str, stats: Stats, stop: float, paths=None):
    headers = {"Authorization": f"Token {token}"}
    while time.monotonic() < stop:
        target = random.choice(paths) if paths else path
        await call(client, stats, name, "GET", target, headers=headers)


async def run_clients(url: str, coroutines_of, *, warmup: float, seconds: float) -> Stats:
    import httpx2

    start = time.monotonic()
    stats = Stats((start + warmup, start + warmup + seconds))
    stop = start + warmup + seconds
    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)

    async def count_cpu() -> None:
        await asyncio.sleep(warmup)
        before = cpu_seconds()
        await asyncio.sleep(seconds)
        stats.cpu = {name: used - before[name] for name, used in cpu_seconds().items()}

    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        await asyncio.gather(*coroutines_of(client, stats, stop), count_cpu())
    return stats


QUIET_WAIT = [60.0]  # seconds each run may wait for idle CPUs (--quiet-wait)


def closed_loop(url, tokens, campaign, n, *, warmup, seconds, pause=0.0) -> Stats:
    wait_for_quiet(QUIET_WAIT[0])
    chosen = tokens[:n]

    def coroutines(client, stats, stop):
        return [reviewer(client, t, campaign, stats, stop, pause) for t in chosen]

    return asyncio.run(run_clients(url, coroutines, warmup=warmup, seconds=seconds))


def ceiling(url, tokens, n, *, warmup, seconds) -> Stats:
    wait_for_quiet(QUIET_WAIT[0])

    def coroutines(client, stats, stop):
        return [reader(client, t, "/api/v1/me/", "me", stats, stop) for t in tokens[:n]]

    return asyncio.run(run_clients(url, coroutines, warmup=warmup, seconds=seconds))


def growth_run(url, tokens, campaign, lead_token, history_paths, *, warmup, seconds) -> Stats:
    wait_for_quiet(QUIET_WAIT[0])

    def coroutines(client, stats, stop):
        load = [reviewer(client, t, campaign, stats, stop, 0.0) for t in tokens[:10]]
        return [*load, reader(client, lead_token, "", "history", stats, stop, history_paths)]

    return asyncio.run(run_clients(url, coroutines, warmup=warmup, seconds=seconds))


# ------------------------------------------------------------------- data --


def build_world(options) -> dict[str, Any]:
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from bench import load_data
    from rubrics.services import default_rubric
    from tasks import services as task_services
    from tests.accounts.factories import UserFactory
    from tests.tasks.factories import ModelVersionFactory, RepositoryFactory

    lead = UserFactory(roles=["lead"])
    author = UserFactory(roles=["author"])
    reviewers = [UserFactory(roles=["reviewer"]) for _ in range(max(options.reviewers) + 3)]
    history_reviewers = [UserFactory(roles=["reviewer"]) for _ in range(30)]
    rubric = default_rubric(actor=lead)
    campaign = task_services.campaign_create(
        actor=lead,
        name="Load",
        rubric_version=rubric.versions.get(number=1),
        model_versions=[ModelVersionFactory(), ModelVersionFactory()],
        reviewers_per_task=3,
        review_timeout_minutes=24 * 60,
    )
    templates = load_data.make_templates(
        campaign=campaign,
        author=author,
        repository=RepositoryFactory(),
        reviewers=history_reviewers,
    )
    started = time.monotonic()
    load_data.clone_live_tasks(templates, options.live_tasks)
    log(f"{options.live_tasks} tasks in review copied in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    load_data.clone_completed_tasks(templates, 333, offset=0)
    log(f"333 completed tasks copied in {time.monotonic() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    tokens = [Token.objects.create(user=user).key for user in reviewers]
    history_tasks = [
        templates.done_task.pk,
        *list(
            templates.campaign.tasks.filter(state="completed")
            .exclude(pk=templates.done_task.pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:99]
        ),
    ]
    return {
        "campaign": campaign.pk,
        "tokens": tokens,
        "lead_token": Token.objects.create(user=lead).key,
        "history_paths": [f"/api/v1/tasks/{pk}/history/" for pk in history_tasks],
        "templates": templates,
    }


def grow_to(world, total_reviews: int, batch_tasks: int = 50_000) -> dict[str, Any]:
    from django.db import connection

    from bench import load_data
    from reviews.models import Review

    started = time.monotonic()
    offset = 1000
    while (have := Review.objects.count()) < total_reviews:
        copies = min(batch_tasks, (total_reviews - have + 2) // 3)
        load_data.clone_completed_tasks(
            world["templates"], copies, offset=offset, audit_in_bulk=True
        )
        offset += copies
        log(f"grow: {Review.objects.count()} reviews after {time.monotonic() - started:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT count(*) FROM audit_event")
        audit_rows = cursor.fetchone()[0]
    return {
        "reviews": Review.objects.count(),
        "audit_events": audit_rows,
        "load_seconds": round(time.monotonic() - started, 1),
    }


def explain_plans(world) -> dict[str, str]:
    from django.db import connection, transaction

    from audit.selectors import _task_history_sql
    from reviews.services import claimable_slots
    from tasks.models import Task

    reviewer = world["templates"].history_reviewers[0]
    plans = {}
    with transaction.atomic():
        claim = claimable_slots(reviewer, world["campaign"]).select_for_update(
            skip_locked=True, of=("self",)
        )
        plans["claim next"] = claim[:1].explain(analyze=True, buffers=True)
        task_id = (
            Task.objects.filter(campaign_id=world["campaign"], state="completed").latest("pk").pk
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN (ANALYZE, BUFFERS) "
                + _task_history_sql(with_identities=True, with_reviews=True),
                {"task": task_id},
            )
            plans["task history (lead)"] = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plans


# ------------------------------------------------------------------- report --


def goal_rows(goals: dict[str, Any]) -> list[tuple[str, Any, str, bool]]:
    """(figure, value, goal, met) for each goal this run measured."""
    rows = []
    for name, goal, at_most in GOALS:
        value = goals.get(name)
        if value is not None:
            met = value <= goal if at_most else value >= goal
            rows.append((name, value, f"{'<=' if at_most else '>='} {goal}", met))
    return rows


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Reviewer load: gunicorn {report['web_workers']} sync workers (DEBUG false), PostgreSQL "
        f"(fsync on), Redis, a Celery worker; {report['cpus']} CPUs shared with the load "
        f"client and other work ({report['finished_at']}).",
        "",
        f"`{report['command']}`",
        "",
        "| run | reviews/s | requests/s | errors | next p50/p95/p99 ms | detail p50/p95/p99 ms "
        "| review p50/p95/p99 ms | ceiling req/s | fraction | worker peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(run, name):
        e = run["endpoints"].get(name)
        return f"{e['p50_ms']} / {e['p95_ms']} / {e['p99_ms']}" if e else "-"

    for run in report["runs"]:
        lines.append(
            f"| {run['name']} | {run['reviews_per_s']} | {run['requests_per_s']} | {run['errors']} "
            f"| {cell(run, 'next')} | {cell(run, 'detail')} | {cell(run, 'review')} "
            f"| {run.get('ceiling_requests_per_s', '-')} | {run.get('fraction', '-')} "
            f"| {run['peak_rss_mib']['max_worker']} |"
        )
    lines += [
        "",
        "CPU-ms per request during each measured window (web: the gunicorn workers; database: "
        "PostgreSQL; client: this load process; machine: all CPUs' busy time), and the "
        "fraction computed from the machine's CPU per request (equal to the fraction while "
        "both runs keep the CPUs busy):",
        "",
        "| run | web | database | client | machine | ceiling: web / database / client / machine "
        "| CPU fraction |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        cpu, top = run.get("cpu_ms_per_request", {}), run.get("ceiling_cpu_ms_per_request")
        parts = ("web", "database", "client", "machine")
        ceiling = " / ".join(str(top.get(p, "-")) for p in parts) if top else "-"
        lines.append(
            f"| {run['name']} | "
            + " | ".join(str(cpu.get(p, "-")) for p in parts)
            + f" | {ceiling} | {run.get('cpu_fraction', '-')} |"
        )
    growth = report.get("growth")
    if growth:
        lines += [
            "",
            f"Growth: {growth['small']['reviews']:,} -> {growth['large']['reviews']:,} reviews "
            f"({growth['large']['audit_events']:,} audit entries; loaded in "
            f"{growth['large']['load_seconds']} s); 10 reviewers closed loop + one lead reading "
            "task histories.",
            "",
            "| endpoint | p50 small | p50 large | ratio | p95 small | p95 large | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, row in growth["ratios"].items():
            lines.append(
                f"| {name} | {row['p50_small']} | {row['p50_large']} | {row['p50_ratio']} "
                f"| {row['p95_small']} | {row['p95_large']} | {row['p95_ratio']} |"
            )
    lines += ["", "| goal | figure | target | met |", "|---|---|---|---|"]
    for name, value, goal, met in goal_rows(report["goals"]):
        lines.append(f"| {name} | {value} | {goal} | {'yes' if met else '**no**'} |")
    for title, plan in report.get("plans", {}).items():
        lines += ["", f"EXPLAIN (ANALYZE, BUFFERS) {title}:", "", "```", plan, "```"]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviewers", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--paused-reviewers", type=int, default=50)
    parser.add_argument("--paused-seconds", type=float, default=30)
    parser.add_argument("--live-tasks", type=int, default=3000)
    parser.add_argument("--growth-reviews", type=int, default=1_000_000, help="0: no growth runs")
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument(
        "--quiet-wait", type=float, default=60, help="before each run, wait for idle CPUs"
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--no-results-file", action="store_true")
    options = parser.parse_args(argv)
    QUIET_WAIT[0] = options.quiet_wait
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = " ".join([".venv/bin/python -m bench.bench_load", *(argv or sys.argv[1:])])

    with local_services("bench-load.", keep=options.keep) as services:
        folder = services.folder
        # The load is many people's: per-person rates would only measure the throttle.
        rates = {f"THROTTLE_{role}": "1000000/min" for role in ("USER", "REVIEWER", "LEAD")}
        env = production_django(services.env, **rates)
        from core import context

        with context.operation(origin="command:bench_load", actor_label=f"os:{getpass.getuser()}"):
            world = build_world(options)
        runs = []
        report: dict[str, Any] = {
            "benchmark": "load",
            "command": command,
            "cpus": os.cpu_count(),
            "web_workers": options.web_workers,
            "runs": runs,
        }
        with (
            Worker(concurrency=2, env=env, log=folder / "worker.log", heartbeat=False),
            gunicorn(env, options.web_workers, folder / "gunicorn.log") as server,
        ):
            url, master = server.url, server.process
            timing = {"warmup": options.warmup, "seconds": options.seconds}
            CPU_TREES.update(web=master.pid, database=services.postmaster_pid)
            from reviews.models import Review

            small = None
            small_reviews = Review.objects.count()
            if options.growth_reviews:
                log(f"growth run with {small_reviews:,} reviews")
                small = growth_run(
                    url, world["tokens"], world["campaign"], world["lead_token"],
                    world["history_paths"], **timing,
                ).summary()  # fmt: skip
                small.update(name="growth small", peak_rss_mib=peak_rss_mib(master))
                runs.append(small)
            for n in options.reviewers:
                log(f"closed loop, {n} reviewers")
                # With many clients a request waits behind the others in gunicorn's backlog: a
                # longer warm-up and window let whole cycles finish inside the window.
                scaled = {
                    "warmup": options.warmup + n * 0.1,
                    "seconds": max(options.seconds, n * 0.25),
                }
                run = closed_loop(url, world["tokens"], world["campaign"], n, **scaled).summary()
                log(f"ceiling, {n} clients")
                top = ceiling(url, world["tokens"], n, **scaled).summary()
                run.update(
                    name=f"closed {n}",
                    ceiling_requests_per_s=top["requests_per_s"],
                    ceiling_errors=top["errors"],
                    ceiling_me=top["endpoints"].get("me"),
                    fraction=round(run["requests_per_s"] / top["requests_per_s"], 2),
                    ceiling_cpu_ms_per_request=top["cpu_ms_per_request"],
                    # The same ratio from CPU time per request of the whole machine.
                    cpu_fraction=round(
                        top["cpu_ms_per_request"]["machine"] / run["cpu_ms_per_request"]["machine"],
                        2,
                    ),
                    peak_rss_mib=peak_rss_mib(master),
                )
                runs.append(run)
                log(
                    json.dumps(
                        {k: run[k] for k in ("reviews_per_s", "errors", "fraction", "cpu_fraction")}
                    )
                )
            paused: dict[str, Any] = {"endpoints": {}}
            if options.paused_reviewers:
                log(f"{options.paused_reviewers} reviewers pausing 1 s")
                paused = closed_loop(
                    url, world["tokens"], world["campaign"], options.paused_reviewers,
                    warmup=options.warmup, seconds=options.paused_seconds, pause=1.0,
                ).summary()  # fmt: skip
                paused.update(
                    name=f"paused {options.paused_reviewers}", peak_rss_mib=peak_rss_mib(master)
                )
                runs.append(paused)
            if options.growth_reviews:
                log(f"growing to {options.growth_reviews:,} reviews")
                loaded = grow_to(world, options.growth_reviews)
                large = growth_run(
                    url, world["tokens"], world["campaign"], world["lead_token"],
                    world["history_paths"], **timing,
                ).summary()  # fmt: skip
                large.update(name="growth large", peak_rss_mib=peak_rss_mib(master))
                runs.append(large)
                ratios = {}
                for name in ("next", "detail", "review", "history"):
                    a, b = small["endpoints"][name], large["endpoints"][name]
                    ratios[name] = {
                        "p50_small": a["p50_ms"],
                        "p50_large": b["p50_ms"],
                        "p50_ratio": round(b["p50_ms"] / a["p50_ms"], 2),
                        "p95_small": a["p95_ms"],
                        "p95_large": b["p95_ms"],
                        "p95_ratio": round(b["p95_ms"] / a["p95_ms"], 2),
                    }
                report["growth"] = {
                    "small": {"reviews": small_reviews},
                    "large": loaded,
                    "ratios": ratios,
                }
            report["plans"] = explain_plans(world)
    report["finished_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    at_200 = [r for r in runs if r["name"] == f"closed {max(options.reviewers)}"]
    report["goals"] = {
        "errors_at_max_n": at_200[0]["errors"] if at_200 else None,
        "min_fraction": min((r["fraction"] for r in runs if "fraction" in r), default=None),
        "paused_review_p99_ms": paused["endpoints"].get("review", {}).get("p99_ms"),
        "max_growth_p50_ratio": max(
            (row["p50_ratio"] for row in report.get("growth", {}).get("ratios", {}).values()),
            default=None,
        ),
    }
    print(json.dumps(report, indent=2, default=str))
    if not options.no_results_file:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(markdown(report))
    missed = [
        f"{name} {value} (goal {goal})"
        for name, value, goal, met in goal_rows(report["goals"])
        if not met
    ]
    if missed:
        log("missed goals: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
