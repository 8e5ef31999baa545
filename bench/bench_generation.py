"""Throughput of candidate generation: N candidates against the fake model server, per concurrency.

    .venv/bin/python -m bench.bench_generation [--candidates 1000] [--concurrency 4 8 16]
        [--latency 0.2] [--repeats 3] [--quiet-wait 120] [--unsafe-pg] [--settings MODULE]
        [--keep] [--no-results-file]

Everything runs on loopback and is started here and stopped at the end, even on failure or
SIGTERM: a private PostgreSQL and Redis (`scripts/services.sh`, in a temporary folder under
`.local/`), the fake model server (`tests.fakes.model_server`, answering after `--latency`
seconds) and, per concurrency C, one Celery worker (`--pool=prefork --concurrency=C`, in its own
process group). Settings are production-like: DEBUG=false (Django keeps no query log), a throwaway
SECRET_KEY, SECURE_SSL_REDIRECT=false; DB_CONN_MAX_AGE, LOG_LEVEL and GENERATION_* pass through
from the environment, and `--settings` names another settings module (to try a fix).

Per concurrency the worker first answers 4C warm-up candidates (reported as the cold start: every
pool process imports the provider SDK and connects), then each repeat is a fresh campaign of N/2
tasks of one turn over two openai model versions (N candidates), created through `task_create`.
All tasks are generated (`task_generate`) in one transaction, so the N jobs are queued in one
burst when it commits and the worker never waits for work: the ideal is C / latency per second.
Before each run the bench waits (up to `--quiet-wait` s) for the CPUs to be idle.

Figures per run, and their median over the repeats:
  wall            first dispatch (the commit) -> last candidate stored (its `updated_at`)
  fraction        (N / wall) / (C / latency); the goal is at least 0.8
  overhead        per job, (updated_at - claimed_at) - latency_ms: the claim's commit, the
                  provider set-up and the store, but not what the job does before its claim
                  (message, Celery, connection) nor after the store (validators, settle, commit)
  slot overhead   C * wall / N - latency: all the time a pool process spends per job beyond the
                  provider's latency, whatever it is spent on
  e2e             first dispatch -> stored, per candidate (mostly queue wait in a burst)
  cpu             busy share of all CPUs; CPU ms per candidate of each process tree (worker,
                  postgres, redis, fake server, this process) and of everything else ("other",
                  hypervisor steal included): a busy machine lowers the fraction
  redundant jobs  jobs that found their candidate already claimed (duplicate messages)

Prints a JSON report on stdout, writes a markdown table to `bench/results/generation.md` and exits
1 if a concurrency's median fraction is below the goal or a candidate failed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, cpu_times, fake_stats, percentile, production_django, wait_for_quiet
from tests.harness.servers import FakeModelServerProcess, local_services
from tests.harness.workers import Worker

RESULTS = ROOT / "bench" / "results" / "generation.md"
GOAL_FRACTION = 0.8
PROMPT = "Fix the command injection in the pip install of model dependencies (case {n})."
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"bench_generation: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------- CPU --


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid → (ppid, CPU ticks of the process and its reaped children)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state): ppid is 4, utime/stime/cutime/cstime are 14..17
        table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return table


def tree_cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process tree (exited children included)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    used: dict[str, float] = {}
    for name, root in roots.items():
        ticks, todo = 0, [root]
        while todo:
            pid = todo.pop()
            if pid in table:
                ticks += table[pid][1]
                todo.extend(children.get(pid, []))
        used[name] = ticks / _CLK_TCK
    return used


class CpuMeter:
    """CPU used between start() and stop(): busy share of all CPUs, seconds per process tree."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots

    def start(self) -> None:
        self._trees = tree_cpu_seconds(self.roots)
        self._self = sum(os.times()[:2])
        self._busy, self._total = cpu_times()

    def stop(self) -> None:
        trees = tree_cpu_seconds(self.roots)
        busy, total = cpu_times()
        self.seconds = {name: trees[name] - self._trees[name] for name in trees}
        self.seconds["bench"] = sum(os.times()[:2]) - self._self
        # Whatever else ran on the machine meanwhile (it competes for the same CPUs).
        self.seconds["other"] = (busy - self._busy) / _CLK_TCK - sum(self.seconds.values())
        self.busy = (busy - self._busy) / max(total - self._total, 1)
        self.other_share = self.seconds["other"] * _CLK_TCK / max(total - self._total, 1)


# ------------------------------------------------------------------- data --


@dataclass
class Fixture:
    lead: Any
    author: Any
    repository: Any
    model_versions: list[Any]


def make_fixture(fake_url: str) -> Fixture:
    from tests.accounts.factories import UserFactory
    from tests.tasks.factories import ModelVersionFactory, RepositoryFactory

    return Fixture(
        lead=UserFactory(roles=["lead"]),
        author=UserFactory(roles=["author"]),
        repository=RepositoryFactory(),
        model_versions=[
            ModelVersionFactory(
                provider="openai", model=f"bench-model-{n}", base_url=f"{fake_url}/v1"
            )
            for n in (1, 2)
        ],
    )


def create_tasks(fixture: Fixture, count: int, name: str) -> tuple[Any, list[Any]]:
    """A new campaign over the fixture's model versions and `count` draft tasks in it."""
    from django.db import connection, transaction

    from tasks import services
    from tests.tasks.factories import make_campaign

    with transaction.atomic():
        campaign = make_campaign(
            model_versions=fixture.model_versions, lead=fixture.lead, name=name
        )
        tasks = [
            services.task_create(
                actor=fixture.author,
                campaign=campaign,
                repository=fixture.repository,
                base_commit="3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1",
                kind="security_fix",
                scenario={"title": f"Block injection in pip install ({n})", "description": ""},
                prompt=PROMPT.format(n=n),
            )
            for n in range(count)
        ]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the tables grow run after run; keep the plans realistic
    return campaign, tasks


def generate_burst(fixture: Fixture, tasks: list[Any], meter: CpuMeter) -> tuple[datetime, float]:
    """`task_generate` for every task in one transaction; returns (first dispatch, send seconds).

    The jobs are sent by on-commit callbacks in the order they were registered, so the first and
    last callbacks here bracket every send; the first also starts `meter`.
    """
    from django.db import transaction
    from django.utils import timezone

    from tasks import services

    marks: list[tuple[datetime, float]] = []

    def first() -> None:
        meter.start()
        marks.append((timezone.now(), time.perf_counter()))

    with transaction.atomic():
        transaction.on_commit(first)
        for task in tasks:
            services.task_generate(task=task, actor=fixture.author)
        transaction.on_commit(lambda: marks.append((timezone.now(), time.perf_counter())))
    (first_dispatch, started), (_, ended) = marks
    return first_dispatch, ended - started


def wait_until_settled(campaign: Any, expected: int, timeout: float, worker: Worker) -> None:
    """Polls until every candidate of `campaign` is answered and no task is still generating."""
    from django.db.models import Count

    from tasks.models import Candidate, CandidateState, Task, TaskState

    candidates = Candidate.objects.filter(turn__task__campaign=campaign)
    done_states = [CandidateState.SUCCEEDED, CandidateState.FAILED]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if candidates.filter(state__in=done_states).count() >= expected and not (
            Task.objects.filter(campaign=campaign, state=TaskState.GENERATING).exists()
        ):
            return
        if (status := worker.poll()) is not None:
            raise RuntimeError(f"the worker exited with code {status}")
        time.sleep(0.1)
    counts = dict(candidates.values_list("state").annotate(n=Count("id")))
    raise RuntimeError(f"not settled after {timeout:.0f}s: {counts}")


# ------------------------------------------------------------------- figures --


def run_figures(
    campaign: Any, first_dispatch: datetime, concurrency: int, latency: float
) -> dict[str, Any]:
    from tasks.models import Candidate, CandidateState

    rows = list(
        Candidate.objects.filter(turn__task__campaign=campaign).values_list(
            "state", "attempts", "claimed_at", "updated_at", "latency_ms"
        )
    )
    done = [r for r in rows if r[0] == CandidateState.SUCCEEDED]
    count = len(rows)
    wall = (max(r[3] for r in rows) - first_dispatch).total_seconds()
    throughput = count / wall
    ideal = concurrency / latency

    def ms(delta: Any) -> float:
        return delta.total_seconds() * 1000

    overhead = [ms(updated - claimed) - provider for _, _, claimed, updated, provider in done]
    return {
        "candidates": count,
        "failed": sum(1 for r in rows if r[0] == CandidateState.FAILED),
        "retried": sum(1 for r in rows if r[1] > 1),
        "wall_s": round(wall, 3),
        "throughput_per_s": round(throughput, 2),
        "ideal_per_s": round(ideal, 2),
        "fraction_of_ideal": round(throughput / ideal, 3),
        "overhead_median_ms": round(statistics.median(overhead), 1),
        "overhead_p95_ms": round(percentile(overhead, 0.95), 1),
        "slot_overhead_ms": round((concurrency * wall / count - latency) * 1000, 1),
        "provider_call_median_ms": round(statistics.median(r[4] for r in done), 1),
        "e2e_median_s": round(statistics.median(ms(r[3] - first_dispatch) for r in rows) / 1000, 3),
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    summary = {k: statistics.median(run[k] for run in runs) for k in keys}
    for name in runs[0]["cpu_ms_per_job"]:
        summary.setdefault("cpu_ms_per_job", {})[name] = statistics.median(
            run["cpu_ms_per_job"][name] for run in runs
        )
    return summary


def one_run(
    fixture: Fixture,
    *,
    tasks: int,
    concurrency: int,
    latency: float,
    name: str,
    cpu_roots: dict[str, int],
    worker: Worker,
    quiet_wait: float,
) -> dict[str, Any]:
    campaign, created = create_tasks(fixture, tasks, name)
    expected = 2 * tasks
    timeout = max(60.0, 20 * expected * latency / concurrency)
    waited = wait_for_quiet(quiet_wait)
    meter = CpuMeter(cpu_roots)
    first_dispatch, send_s = generate_burst(fixture, created, meter)
    wait_until_settled(campaign, expected, timeout, worker)
    meter.stop()
    figures = run_figures(campaign, first_dispatch, concurrency, latency)
    figures["dispatch_s"] = round(send_s, 3)
    figures["cpu_busy"] = round(meter.busy, 3)
    # Share of all CPUs used by processes other than these (zero on an otherwise idle machine).
    figures["cpu_other"] = round(meter.other_share, 3)
    figures["quiet_wait_s"] = round(waited, 1)
    figures["cpu_ms_per_job"] = {
        name: round(seconds * 1000 / expected, 2) for name, seconds in meter.seconds.items()
    }
    return figures


def jobs_logged(log_path: Path) -> int:
    """Generation jobs the worker logged as run (each job logs one line at INFO)."""
    with log_path.open(encoding="utf-8", errors="replace") as lines:
        return sum('"job": "tasks.generate_candidate"' in line for line in lines)


def measure_concurrency(
    fixture: Fixture,
    concurrency: int,
    options: argparse.Namespace,
    *,
    env: dict[str, str],
    log_path: Path,
    cpu_roots: dict[str, int],
) -> dict[str, Any]:
    """A worker of `concurrency` processes: a warm-up, then `options.repeats` timed runs."""
    log(f"concurrency {concurrency}: starting the worker")
    runs = []
    with Worker(concurrency=concurrency, env=env, log=log_path, heartbeat=False) as worker:
        roots = {"worker": worker.pid, **cpu_roots}
        warmup = one_run(
            fixture,
            tasks=2 * concurrency,
            concurrency=concurrency,
            latency=options.latency,
            name=f"warm-up C={concurrency}",
            cpu_roots=roots,
            worker=worker,
            quiet_wait=options.quiet_wait,
        )
        for repeat in range(1, options.repeats + 1):
            run = one_run(
                fixture,
                tasks=options.candidates // 2,
                concurrency=concurrency,
                latency=options.latency,
                name=f"C={concurrency} run {repeat}",
                cpu_roots=roots,
                worker=worker,
                quiet_wait=options.quiet_wait,
            )
            runs.append(run)
            log(
                f"concurrency {concurrency} run {repeat}: {run['fraction_of_ideal']:.2f} of ideal, "
                f"{run['wall_s']:.1f} s"
            )
    logged = jobs_logged(log_path)
    answered = warmup["candidates"] + sum(run["candidates"] for run in runs)
    return {
        "concurrency": concurrency,
        "median": medians(runs),
        "runs": runs,
        "warmup": {k: warmup[k] for k in ("candidates", "wall_s", "fraction_of_ideal")},
        # Jobs that found their candidate already claimed (a duplicate message); unknown
        # when LOG_LEVEL hides the job log.
        "redundant_jobs": logged - answered if logged else None,
    }


# ------------------------------------------------------------------- report --


def markdown(report: dict[str, Any]) -> str:
    header = (
        "| C | candidates | wall s | throughput /s | ideal /s | fraction | overhead median ms "
        "| overhead p95 ms | slot overhead ms | e2e median s | CPU busy | CPU others |"
    )
    lines = [
        f"Generation throughput: {report['candidates']} candidates, fake server latency "
        f"{report['latency_s']} s, prefork worker, {report['cpus']} CPUs, PostgreSQL "
        f"{'fsync off' if report['unsafe_pg'] else 'fsync on'}, DB_CONN_MAX_AGE "
        f"{report['settings']['DB_CONN_MAX_AGE']}; median of {report['repeats']} runs "
        f"({report['finished_at']}).",
        "",
        f"`{report['command']}`",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for result in report["results"]:
        m = result["median"]
        lines.append(
            f"| {result['concurrency']} | {m['candidates']:.0f} | {m['wall_s']:.2f} "
            f"| {m['throughput_per_s']:.1f} | {m['ideal_per_s']:.0f} | {m['fraction_of_ideal']:.2f} "
            f"| {m['overhead_median_ms']:.1f} | {m['overhead_p95_ms']:.1f} "
            f"| {m['slot_overhead_ms']:.1f} | {m['e2e_median_s']:.2f} | {m['cpu_busy']:.0%} "
            f"| {m['cpu_other']:.0%} |"
        )
    names = list(report["results"][0]["median"]["cpu_ms_per_job"])
    cpu_header = (
        "| C | " + " | ".join(names) + " | cold start (first 4C), fraction | redundant jobs |"
    )
    lines += ["", "CPU ms per candidate, by process tree:", "", cpu_header]
    lines.append("|" + "---|" * (cpu_header.count("|") - 1))
    for result in report["results"]:
        cpu = result["median"]["cpu_ms_per_job"]
        lines.append(
            f"| {result['concurrency']} | "
            + " | ".join(f"{cpu[name]:.1f}" for name in names)
            + f" | {result['warmup']['fraction_of_ideal']:.2f} | {result['redundant_jobs']} |"
        )
    lines += [
        "",
        "overhead = (updated_at - claimed_at) - latency_ms per candidate; slot overhead = "
        "C * wall / N - latency (everything a pool process spends per job besides the provider); "
        "CPU others = share of the CPUs used by unrelated processes during the run.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1000, help="per run; even")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--latency", type=float, default=0.2, help="fake server, seconds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="before each run, wait up to this many seconds for the CPUs to be idle",
    )
    parser.add_argument("--unsafe-pg", action="store_true", help="PostgreSQL with fsync off")
    parser.add_argument(
        "--settings", default="marlin.settings", help="settings module of the bench and worker"
    )
    parser.add_argument("--keep", action="store_true", help="keep the services' folder and logs")
    parser.add_argument("--no-results-file", action="store_true", help="JSON on stdout only")
    options = parser.parse_args(argv)
    if options.candidates < 2 or options.candidates % 2:
        parser.error("--candidates must be even: each task has two model versions")

    # SIGTERM unwinds like Ctrl-C, so every `finally` stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = " ".join([".venv/bin/python -m bench.bench_generation", *(argv or sys.argv[1:])])
    with local_services(
        "bench-generation.", unsafe_pg=options.unsafe_pg, keep=options.keep
    ) as services:
        folder = services.folder
        env = production_django(services.env, settings_module=options.settings)
        from django.conf import settings

        from core import context

        postmaster, redis = services.postmaster_pid, services.redis_pid
        with (
            FakeModelServerProcess(options.latency, env=env) as fake,
            context.operation(
                origin="command:bench_generation", actor_label=f"os:{getpass.getuser()}"
            ),
        ):
            fixture = make_fixture(fake.url)
            results = [
                measure_concurrency(
                    fixture,
                    concurrency,
                    options,
                    env=env,
                    log_path=folder / f"worker-{concurrency}.log",
                    cpu_roots={
                        "postgres": postmaster,
                        "redis": redis,
                        "fake_server": fake.process.pid,
                    },
                )
                for concurrency in options.concurrency
            ]
            served = fake_stats(fake.url)

    report = {
        "benchmark": "generation",
        "command": command,
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "candidates": options.candidates,
        "latency_s": options.latency,
        "repeats": options.repeats,
        "pool": "prefork",
        "cpus": os.cpu_count(),
        "unsafe_pg": options.unsafe_pg,
        "settings": {
            "module": options.settings,
            "DEBUG": settings.DEBUG,
            "DB_CONN_MAX_AGE": settings.DATABASES["default"]["CONN_MAX_AGE"],
            "CELERY_WORKER_PREFETCH_MULTIPLIER": settings.CELERY_WORKER_PREFETCH_MULTIPLIER,
            "LOG_LEVEL": settings.LOG_LEVEL,
            "CELERY_DB_REUSE_MAX": getattr(settings, "CELERY_DB_REUSE_MAX", None),
            "CELERY_TASK_IGNORE_RESULT": getattr(settings, "CELERY_TASK_IGNORE_RESULT", False),
        },
        "fake_server": served,
        "goal": {
            "fraction_of_ideal": GOAL_FRACTION,
            "met": all(
                r["median"]["fraction_of_ideal"] >= GOAL_FRACTION
                and not any(run["failed"] for run in r["runs"])
                for r in results
            ),
        },
        "results": results,
    }
    print(json.dumps(report, indent=2))
    if not options.no_results_file:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(markdown(report))
    return 0 if report["goal"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
