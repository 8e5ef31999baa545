"""Executable evidence: the sandbox's own cost per run, and evidence for N candidates with workers.

    .venv/bin/python -m bench.bench_evidence [--runs 30] [--candidates 100] [--concurrency 2]
        [--skip-overhead] [--skip-throughput]

Part 1, no database: the same command run directly (`run_watched`, the same output watchdog)
and in the sandbox (`Session.run`: bubblewrap, setpriv, prlimit, the wait for the sandbox uid to
empty), alternating, `--runs` times each, on a small repository's work tree. Commands: `true`
(the bare cost of a sandbox) and the repository's test command (python -m pytest, one test).

Part 2: a private PostgreSQL and Redis (`scripts/services.sh`, under `.local/`), one Celery
worker with `--concurrency` pool processes, and `--candidates` succeeded candidates (half pass
their tests, half break them) on one small local repository, all queued in one burst after one
commit. Wall time runs from the commit to the last stored `evidence.tests` result. Each job
copies the cached tree, applies the diff, runs ruff and the tests, each in its own sandbox.

Prints a JSON report on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import production_django
from tests.harness.servers import local_services
from tests.harness.workers import Worker

PYTEST = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def log(message: str) -> None:
    print(f"bench_evidence: {message}", file=sys.stderr, flush=True)


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def sandbox_overhead(runs: int, root: Path) -> dict[str, Any]:
    from tasks.evidence.sandbox import run_watched
    from tests.tasks.evidence_repos import make_repo, workplace_for

    repo = make_repo(root / "repos")
    workplace = workplace_for(root / "evidence")
    tree = root / "tree"
    workplace.cache.checkout(source_url=repo.url, commit=repo.commit, into=tree)
    limits = workplace.limits
    sandbox = workplace.sandbox
    direct_env = {
        "PATH": ":".join(sandbox.path),
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        **sandbox.env,
    }
    report = {}
    with sandbox.open(tree) as session:
        for name, command in (("true", ["true"]), ("pytest", PYTEST)):
            direct, boxed = [], []
            for n in range(runs):
                # alternate the order so machine noise falls on both
                order = ("direct", "boxed") if n % 2 == 0 else ("boxed", "direct")
                for kind in order:
                    if kind == "direct":
                        result = run_watched(command, limits=limits, cwd=tree, env=direct_env)
                        direct.append(result.duration_seconds)
                    else:
                        started = time.monotonic()
                        result = session.run(command, limits=limits)
                        boxed.append(time.monotonic() - started)
                    assert result.exit_code == 0, result.output
            report[name] = {
                "runs": runs,
                "direct_median_ms": median_ms(direct),
                "sandbox_median_ms": median_ms(boxed),
                "overhead_median_ms": round(median_ms(boxed) - median_ms(direct), 1),
                "ratio": round(statistics.median(boxed) / statistics.median(direct), 2),
            }
            log(f"overhead {name}: {report[name]}")
    return report


def make_candidates(count: int, root: Path) -> list[int]:
    from accounts.models import User
    from rubrics.services import default_rubric
    from tasks import services as task_services
    from tasks.models import Candidate, CandidateState, ModelVersion, Repository
    from tests.tasks.evidence_repos import CALC, make_repo

    repo = make_repo(root / "repos")
    good = repo.diff({"calc.py": CALC + "\n\ndef double(a):\n    return add(a, a)\n"})
    bad = repo.diff({"calc.py": "def add(a, b):\n    return a - b\n"})
    lead = User.objects.create(username="bench-lead")
    author = User.objects.create(username="bench-author")
    versions = [
        ModelVersion.objects.create(slug=f"bench-{n}", provider="replay", model=f"m{n}")
        for n in range(2)
    ]
    rubric = default_rubric(actor=lead)
    campaign = task_services.campaign_create(
        actor=lead,
        name="bench evidence",
        rubric_version=rubric.versions.get(number=1),
        model_versions=versions,
        evidence={"test_command": PYTEST, "linters": ["ruff"], "timeout_seconds": 60},
    )
    source = Repository.objects.create(
        full_name="bench/calc", url="https://example.org/bench/calc", source_url=repo.url
    )
    ids = []
    for n in range(count // 2):
        task = task_services.task_create(
            actor=author,
            campaign=campaign,
            repository=source,
            base_commit=repo.commit,
            kind="feature",
            scenario={"title": f"Add double {n}", "description": "A helper."},
            prompt=f"Add a helper that doubles a number, case {n}.",
        )
        turn = task.turns.get()
        for slot, diff in zip(task.slots.order_by("label"), (good, bad), strict=True):
            output = f"```diff\n{diff}```\n"
            ids.append(
                Candidate.objects.create(
                    turn=turn,
                    slot=slot,
                    state=CandidateState.SUCCEEDED,
                    output=output,
                    diff=diff,
                    content_hash=f"{n}-{slot.label}",
                ).pk
            )
    return ids


def throughput(count: int, concurrency: int, env: dict[str, str], root: Path) -> dict[str, Any]:
    from django.db import transaction

    from tasks.jobs import collect_evidence_job
    from tasks.models import ValidatorResult

    ids = make_candidates(count, root)
    with Worker(concurrency=concurrency, env=env, log=root / "worker.log", heartbeat=False):
        time.sleep(3)  # the pool is up before the clock starts
        started = time.monotonic()
        with transaction.atomic():
            for candidate_id in ids:
                transaction.on_commit(
                    lambda c=candidate_id: collect_evidence_job.delay(candidate_id=c)
                )
        tests = ValidatorResult.objects.filter(candidate_id__in=ids, key="evidence.tests")
        deadline = started + 60 * 30
        while tests.count() < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {tests.count()} of {count} candidates got evidence")
            time.sleep(0.2)
        wall = time.monotonic() - started
    results = list(
        ValidatorResult.objects.filter(candidate_id__in=ids).values("key", "passed", "details")
    )
    per_step = {}
    for key in ("evidence.apply", "evidence.ruff", "evidence.tests"):
        durations = [r["details"]["duration_seconds"] for r in results if r["key"] == key]
        per_step[key] = round(statistics.median(durations) * 1000, 1)
    passed = sum(1 for r in results if r["key"] == "evidence.tests" and r["passed"])
    return {
        "candidates": count,
        "concurrency": concurrency,
        "wall_seconds": round(wall, 2),
        "candidates_per_second": round(count / wall, 2),
        "seconds_per_candidate_per_process": round(wall * concurrency / count, 3),
        "step_median_ms": per_step,
        "tests_passed": passed,
        "tests_failed": count - passed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report: dict[str, Any] = {"load_average_before": os.getloadavg()}
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marlin.settings")
    with tempfile.TemporaryDirectory(prefix="bench-evidence.") as scratch:
        root = Path(scratch)
        if not options.skip_overhead:
            report["sandbox_overhead"] = sandbox_overhead(options.runs, root / "overhead")
        if not options.skip_throughput:
            report["throughput"] = run_throughput(options, root / "throughput")
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    return 0


def run_throughput(options: argparse.Namespace, root: Path) -> dict[str, Any]:
    root.mkdir(parents=True)
    with local_services("bench-evidence.") as services:
        env = production_django(services.env, EVIDENCE_DIR=str(root / "evidence"))
        from core import context

        with context.operation(
            origin="command:bench_evidence", actor_label=f"os:{getpass.getuser()}"
        ):
            result = throughput(options.candidates, options.concurrency, env, root)
        log(f"throughput: {result}")
        return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
