"""A larger Schemathesis pass than the suite's: more examples per operation and role, longer
stateful sequences. Same runner, same checks (tests/security/fuzz.py).

    make test PYTEST_ARGS="-q -s bench/bench_schemathesis.py"
    # or, on running services: scripts/test.sh -q -s bench/bench_schemathesis.py

Sizes from the environment: BENCH_EXAMPLES (per mode, per operation a role may call; default 25),
BENCH_REFUSED (per operation a role may not call; 2), BENCH_STATEFUL (sequences per role; 20),
BENCH_STEPS (steps per sequence; 10). Prints a JSON report (cases run, time, statuses, distinct
failures), writes bench/results/schemathesis.md, and fails if any check failed.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.cache import cache

from tests.fakes.model_server import FakeModelServer
from tests.security.fuzz import run_all
from tests.security.world import build_world

RESULTS = Path(__file__).parent / "results" / "schemathesis.md"


@pytest.fixture
def fake_models():
    with FakeModelServer() as server:
        yield server


@pytest.mark.django_db
def test_larger_schemathesis_pass(fake_models, monkeypatch):
    cache.clear()  # throttle counters live in Redis
    sizes = {
        "examples": int(os.environ.get("BENCH_EXAMPLES", 25)),
        "refused_examples": int(os.environ.get("BENCH_REFUSED", 2)),
        "stateful_examples": int(os.environ.get("BENCH_STATEFUL", 20)),
        "steps": int(os.environ.get("BENCH_STEPS", 10)),
    }
    world = build_world(fake_models, monkeypatch)
    started = time.monotonic()
    report = run_all(world, **sizes)
    seconds = time.monotonic() - started
    figures = {
        **sizes,
        "cases": report.cases,
        "stateful_cases": report.stateful_cases,
        "seconds": round(seconds, 1),
        "cases_per_second": round(report.cases / seconds, 1),
        "statuses": dict(sorted(report.statuses.items())),
        "server_errors": sum(n for status, n in report.statuses.items() if status >= 500),
        "distinct_failures": len(report.failures),
    }
    print(json.dumps(figures))
    RESULTS.write_text(
        f"Schemathesis pass ({datetime.now(UTC).isoformat(timespec='seconds')}): "
        f'`make test PYTEST_ARGS="-q -s bench/bench_schemathesis.py"`\n\n'
        "| examples | refused | stateful | steps | cases | of which stateful | seconds "
        "| 5xx | distinct failures |\n|---|---|---|---|---|---|---|---|---|\n"
        f"| {sizes['examples']} | {sizes['refused_examples']} | {sizes['stateful_examples']} "
        f"| {sizes['steps']} | {report.cases} | {report.stateful_cases} | {seconds:.0f} "
        f"| {figures['server_errors']} | {len(report.failures)} |\n\n"
        f"Statuses: {json.dumps(figures['statuses'])}\n"
    )
    assert not report.failures, report.summary()
