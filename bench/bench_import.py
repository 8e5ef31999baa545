"""Times the repository import: 10,000 CSV rows into an empty table, then the same file again.

    DJANGO_SETTINGS_MODULE=marlin.settings DEBUG=true DATABASE_URL=postgres://... \\
        .venv/bin/python -m bench.bench_import [--rows N] [--runs N] [--batch-size N]

Each run imports the file (every row is created), then imports it again (every row is
unchanged), inside one transaction that is then rolled back, and vacuums `tasks_repository`: every
run starts from the same table, and neither the catalogue nor the audit trail keeps anything.
(TRUNCATE cannot reset the table: `tasks_task` references it, and CASCADE would wipe the tasks.)
The timings include the audit trigger's work but not the final COMMIT of a real import.

Prints a JSON report with the median times; exits 1 if any import missed the goal (10,000 rows
in under 10 s).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import django

GOAL_SECONDS = 10.0

OWNERS = [
    "apache", "google", "microsoft", "facebook", "psf", "pallets", "django", "encode",
    "rust-lang", "golang", "kubernetes", "hashicorp", "vercel", "nodejs", "numpy", "pandas-dev",
    "scikit-learn", "pytorch", "tensorflow", "huggingface", "grafana", "prometheus", "elastic",
    "redis", "postgres", "sqlalchemy", "tiangolo", "astral-sh", "mozilla", "gitlab-org",
]  # fmt: skip
WORDS = [
    "core", "api", "client", "server", "sdk", "cli", "tools", "utils", "engine", "web", "data",
    "stream", "cache", "auth", "config", "parser", "runtime", "lint", "docs", "plugin", "proxy",
    "queue", "store", "sync", "graph", "metrics", "logger", "vision", "text", "router",
]  # fmt: skip
LANGUAGES = {
    "Python": 30, "JavaScript": 20, "TypeScript": 18, "Go": 12, "Java": 10, "Rust": 8,
    "C++": 6, "C": 5, "Ruby": 4, "PHP": 3, "Kotlin": 2, "": 4,
}  # fmt: skip
LICENSES = {
    "MIT": 40, "Apache-2.0": 30, "BSD-3-Clause": 10, "GPL-3.0-only": 6, "MPL-2.0": 3,
    "LGPL-2.1-only": 2, "ISC": 2, "": 7,
}  # fmt: skip
BRANCHES = {"main": 70, "master": 25, "develop": 3, "trunk": 2}
COLUMNS = ["full_name", "url", "default_branch", "language", "license", "active"]


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def generate_rows(count: int, seed: int = 20261122) -> list[dict[str, str]]:
    """`count` distinct, plausible repositories (the same ones for the same seed)."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < count:
        owner = rng.choice(OWNERS)
        name = "-".join(rng.sample(WORDS, rng.randint(1, 3)))
        if rng.random() < 0.3:
            name = f"{name}-{rng.randint(2, 99)}"
        full_name = f"{owner}/{name}"
        if full_name.lower() in seen:
            continue
        seen.add(full_name.lower())
        rows.append(
            {
                "full_name": full_name,
                "url": f"https://github.com/{full_name}",
                "default_branch": _pick(rng, BRANCHES),
                "language": _pick(rng, LANGUAGES),
                "license": _pick(rng, LICENSES),
                "active": "true" if rng.random() < 0.92 else "false",
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _summary(times: list[float], rows: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "median_s": round(median, 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "rows_per_s": round(rows / median),
        "runs_s": [round(t, 4) for t in times],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1000)
    options = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marlin.settings")
    django.setup()
    from django.db import connection, transaction

    from core import context
    from core.sql import quoted_table
    from tasks.catalogue import read_rows, repositories_import
    from tasks.models import Repository

    table = quoted_table(Repository)

    def vacuum() -> None:
        # Clears the dead rows a rolled-back run leaves, so that the next run's unique-index
        # checks do not wade through them.
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {table}")

    def timed_import(path: Path) -> tuple[float, Any]:
        started = time.perf_counter()
        report = repositories_import(rows=read_rows(path), batch_size=options.batch_size)
        return time.perf_counter() - started, report

    first: list[float] = []
    second: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        path = Path(folder) / "repositories.csv"
        write_csv(path, generate_rows(options.rows))
        # Recorded in the audit trail like a management command run by this user.
        with context.operation(
            origin="command:bench_import", actor_label=f"os:{getpass.getuser()}"
        ):
            for _ in range(options.runs):
                vacuum()
                with transaction.atomic():
                    elapsed, report = timed_import(path)
                    if (report.created, report.rejected) != (options.rows, []):
                        raise SystemExit(f"first import did not create every row: {report}")
                    first.append(elapsed)
                    elapsed, report = timed_import(path)
                    if (report.created, report.updated, report.unchanged) != (0, 0, options.rows):
                        raise SystemExit(f"second import was not a no-op: {report}")
                    second.append(elapsed)
                    transaction.set_rollback(True)
        vacuum()

    result = {
        "rows": options.rows,
        "runs": options.runs,
        "batch_size": options.batch_size,
        "first_import": _summary(first, options.rows),
        "second_import": _summary(second, options.rows),
        "goal": {"each_import_under_s": GOAL_SECONDS, "met": max(first + second) < GOAL_SECONDS},
    }
    print(json.dumps(result, indent=2))
    return 0 if result["goal"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
