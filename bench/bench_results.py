"""Campaign results at scale: the leaderboard over 1,000,000 stored judgments, and the export.

    .venv/bin/python -m bench.bench_results [--judgments 1000000] [--models 50] [--rounds 200]
        [--runs 5] [--skip-export] [--keep-services]

Starts its own PostgreSQL and Redis with `scripts/services.sh start .local/bench-results.XXXX`,
migrates, and stops and removes them at the end (unless `--keep-services`).

Data: `--models` model versions with known strengths, in a family of campaigns (each a rerun of
the one before, same rubric version) of at most 8 model versions each, sharing one with the
next (50 model versions: 7 campaigns); `--judgments` completed tasks, each with one turn, slots
A and B (two model versions of its campaign drawn at random, slot order random), two answers of
about 500 characters, and an outcome whose preference is drawn from Davidson's model (about 18%
ties) with per-criterion scores. The rows are cloned in bulk (`INSERT … SELECT` over a plan
COPYed in) from template rows made through the ORM, with `session_replication_role = replica`
for the load only: the audit triggers and foreign-key checks do not fire for these bulk rows.

1. The family's leaderboard (`?scope=family`), `--runs` times each: the pairwise aggregation in
   PostgreSQL (`reviews.results.pair_counts`, the endpoint's GROUP BY over outcomes and slots),
   the per-criterion aggregation (`criterion_aggregates`), the fit on the counts
   (`reviews.leaderboard.leaderboard`, `--rounds` bootstrap rounds), and the whole
   `campaign_leaderboard`. Medians; Spearman of the ratings against the true strengths. Goal:
   the fit under 2 s after aggregation.
2. Export of all `--judgments` rows as one campaign (the family's tasks are first moved into its
   first campaign, a bulk UPDATE with the triggers off), each in a child process whose peak
   resident memory (VmHWM) it writes at exit: `manage.py export_preferences` to a file,
   JSON Lines then Parquet, and `GET /api/v1/campaigns/{id}/export/` through Django's handler
   with the URL conf loaded, as a web worker has, the body discarded. Goal: peak under 300 MB.
   A child that only imports Django and the export gives the baseline.

Prints a JSON report; exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.harness.servers import Services, local_folder

ROOT = Path(__file__).resolve().parent.parent
FIT_GOAL_SECONDS = 2.0
EXPORT_GOAL_MB = 300
TIE_PARAMETER = 0.5
SLOTS = 8  # model versions a campaign may compare


def django_env(env: dict[str, str]) -> dict[str, str]:
    return {
        "DATABASE_URL": env["DATABASE_URL"],
        "REDIS_URL": env["REDIS_URL"],
        "DJANGO_SETTINGS_MODULE": "marlin.settings",
        "DEBUG": "false",  # DEBUG keeps a log of queries: not what a production export carries
        "SECRET_KEY": "bench-results-not-a-secret-0123456789-abcdefghijklmnop",
        "ALLOWED_HOSTS": "localhost,testserver",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }


def campaign_members(models: int) -> list[list[int]]:
    """Model versions per campaign: at most 8 each (slots A to H), each campaign sharing one
    with the next, so the family links them all (50 model versions: 7 campaigns)."""
    members, first = [], 0
    while first < models - 1:
        members.append(list(range(first, min(first + SLOTS, models))))
        first += SLOTS - 1
    return members


def plan(models: int, judgments: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """True strengths, and per judgment: campaign (index), model at A, model at B, preference,
    scores of A and B. Each judgment compares two model versions of one campaign."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 1, models)
    members = campaign_members(models)
    campaign = rng.integers(0, len(members), judgments)
    size = np.array([len(m) for m in members])[campaign]
    first = np.array([m[0] for m in members])[campaign]
    a_offset = rng.integers(0, size)
    b_offset = (a_offset + rng.integers(1, size)) % size
    a, b = first + a_offset, first + b_offset
    half = (true[a] - true[b]) / 2
    denominator = np.exp(half) + np.exp(-half) + TIE_PARAMETER
    p_a, p_tie = np.exp(half) / denominator, TIE_PARAMETER / denominator
    u = rng.random(judgments)
    preference = np.where(u < p_a, -2, np.where(u < p_a + p_tie, 0, 2))
    score_a = np.clip(np.round(3 + true[a] + rng.normal(0, 1, judgments)), 1, 5).astype(int)
    score_b = np.clip(np.round(3 + true[b] + rng.normal(0, 1, judgments)), 1, 5).astype(int)
    return true, np.stack([campaign, a, b, preference, score_a, score_b], axis=1)


def _columns(model: Any, *, with_id: bool) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if with_id or not f.primary_key]


def clone(cursor: Any, model: Any, template: int, overrides: dict[str, str], *, with_id: bool):
    """INSERT … SELECT one row per plan row, copying the template row's other columns."""
    columns = _columns(model, with_id=with_id)
    values = [overrides.get(c, f'tpl."{c}"') for c in columns]
    table = model._meta.db_table
    names = ", ".join(f'"{c}"' for c in columns)
    cursor.execute(
        f'INSERT INTO "{table}" ({names}) '
        f'SELECT {", ".join(values)} FROM "{table}" tpl, bench_plan p WHERE tpl.id = %s',
        [template],
    )


def load(models: int, judgments: int) -> dict[str, Any]:
    """The campaign and its judgments; returns the campaign id, true strengths and timings."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction

    from reviews.models import Outcome
    from rubrics.services import default_rubric
    from tasks.models import Candidate, ModelVersion, Repository, Task, TaskSlot, Turn
    from tasks.services import campaign_create

    started = time.perf_counter()
    lead = get_user_model().objects.create_user(username="bench-lead", password="x")
    lead.groups.set(Group.objects.filter(name="lead"))  # roles are groups
    rubric_version = default_rubric(actor=lead).versions.get(number=1)
    criteria = [c["key"] for c in rubric_version.criteria]
    versions = ModelVersion.objects.bulk_create(
        ModelVersion(slug=f"bench-model-{k:02d}", provider="replay", model=f"bench-{k}")
        for k in range(models)
    )
    campaigns: list[Any] = []
    for number, members in enumerate(campaign_members(models)):
        campaigns.append(
            campaign_create(
                actor=lead,
                name=f"Bench {number}",
                rubric_version=rubric_version,
                model_versions=[versions[k] for k in members],
                rerun_of=campaigns[-1] if campaigns else None,
            )
        )
    # Template rows live in a campaign of their own, so the bench campaign holds only clones.
    holder = campaign_create(
        actor=lead, name="Templates", rubric_version=rubric_version, model_versions=versions[:2]
    )
    repository = Repository.objects.create(full_name="bench/repo", url="https://example.org/r")
    task = Task.objects.create(
        campaign=holder,
        author=lead,
        repository=repository,
        base_commit="3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1",
        kind="security_fix",
        scenario_title="Template",
    )
    turn = Turn.objects.create(task=task, index=1, prompt="Template prompt")
    slot = TaskSlot.objects.create(task=task, model_version=versions[0], label="A")
    candidate = Candidate.objects.create(turn=turn, slot=slot, output="Template answer")
    outcome = Outcome.objects.create(
        task=task,
        round=1,
        method="consensus",
        preference=-2,
        scores=[],
        rubric_version=rubric_version,
        agreement={"preference_signs_agree": True, "max_score_spread": 0},
    )

    true, rows = plan(models, judgments)
    ids = np.array([v.pk for v in versions])
    campaign_ids = np.array([c.pk for c in campaigns])
    table = np.column_stack(
        [
            np.arange(1, judgments + 1),
            campaign_ids[rows[:, 0]],
            ids[rows[:, 1]],
            ids[rows[:, 2]],
            rows[:, 3:],
        ]
    )
    scores = ", ".join(
        f"jsonb_build_object('turn', 1, 'slot', '{slot_label}', 'criterion', '{key}', "
        f"'score', p.score_{slot_label.lower()})"
        for slot_label in ("A", "B")
        for key in criteria
    )
    timings = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "CREATE TEMP TABLE bench_plan (g bigint, campaign bigint, a bigint, b bigint, preference int, "
            "score_a int, score_b int) ON COMMIT DROP"
        )
        step = time.perf_counter()
        buffer = io.StringIO()
        np.savetxt(buffer, table, fmt="%d", delimiter="\t")
        with cursor.connection.cursor().copy("COPY bench_plan FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        timings["copy_plan_seconds"] = round(time.perf_counter() - step, 2)

        def base(model: Any) -> int:
            cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{model._meta.db_table}"')
            return cursor.fetchone()[0]

        task0, turn0, slot0 = base(Task), base(Turn), base(TaskSlot)
        step = time.perf_counter()
        clone(
            cursor,
            Task,
            task.pk,
            {
                "id": f"{task0} + p.g",
                "campaign_id": "p.campaign",
                "state": "'completed'",
                "scenario_title": "'Bench task ' || p.g",
            },
            with_id=True,
        )
        clone(
            cursor,
            Turn,
            turn.pk,
            {
                "id": f"{turn0} + p.g",
                "task_id": f"{task0} + p.g",
                "prompt": "'Fix the command injection in the pip install of model dependencies, "
                "case ' || p.g",
            },
            with_id=True,
        )
        for offset, label, column in ((-1, "A", "a"), (0, "B", "b")):
            clone(
                cursor,
                TaskSlot,
                slot.pk,
                {
                    "id": f"{slot0} + 2 * p.g + {offset}",
                    "task_id": f"{task0} + p.g",
                    "model_version_id": f"p.{column}",
                    "label": f"'{label}'",
                },
                with_id=True,
            )
            clone(
                cursor,
                Candidate,
                candidate.pk,
                {
                    "turn_id": f"{turn0} + p.g",
                    "slot_id": f"{slot0} + 2 * p.g + {offset}",
                    "state": "'succeeded'",
                    "output": f"'Answer {label} ' || p.g || ': ' || repeat(md5(p.g::text || '{label}'), 15)",
                },
                with_id=False,
            )
        clone(
            cursor,
            Outcome,
            outcome.pk,
            {
                "task_id": f"{task0} + p.g",
                "preference": "p.preference",
                "scores": f"jsonb_build_array({scores})",
            },
            with_id=False,
        )
        timings["insert_seconds"] = round(time.perf_counter() - step, 2)
        for model in (Task, Turn, TaskSlot):
            table_name = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table_name}\"', 'id'), "
                f'(SELECT MAX(id) FROM "{table_name}"))'
            )
    step = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    timings["analyze_seconds"] = round(time.perf_counter() - step, 2)
    timings["load_seconds"] = round(time.perf_counter() - started, 2)
    return {
        "campaign": campaigns[-1].pk,
        "true": true,
        "slugs": [v.slug for v in versions],
        **timings,
    }


def measure_leaderboard(
    campaign_id: int, true: np.ndarray, slugs: list[str], rounds: int, runs: int
):
    from django.db import connection
    from scipy.stats import spearmanr

    from reviews import leaderboard as lb
    from reviews import results
    from tasks.models import Campaign, ModelVersion

    campaign = Campaign.objects.select_related("rubric_version__rubric").get(pk=campaign_id)
    family = results.campaign_family(campaign)
    pairs_seconds, criteria_seconds, fit_seconds, endpoint_seconds = [], [], [], []
    table: dict[str, Any] = {}
    for _ in range(runs):
        started = time.perf_counter()
        pairs = results.pair_counts(family)
        pairs_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        results.criterion_aggregates(family)
        criteria_seconds.append(time.perf_counter() - started)
        counts = lb.counts_from_pairs(pairs)
        started = time.perf_counter()
        table = lb.leaderboard(counts, rounds=rounds, seed=0)
        fit_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        results.campaign_leaderboard(campaign=campaign, scope="family", rounds=rounds)
        endpoint_seconds.append(time.perf_counter() - started)
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + results.PAIR_COUNTS_SQL.format(**results._TABLES),
            [family],
        )
        explain = "\n".join(row[0] for row in cursor.fetchall())
    print(explain, file=sys.stderr)
    pk_of = dict(ModelVersion.objects.values_list("slug", "pk"))
    estimate = {row["model_version"]: row["log_strength"] for row in table["ranking"]}
    ordered = [estimate[pk_of[slug]] for slug in slugs]

    def summary(values: list[float]) -> dict[str, float]:
        return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}

    return {
        "campaigns": len(family),
        "judgments": table["judgments"],
        "runs": runs,
        "bootstrap_rounds": rounds,
        "pair_aggregation_seconds": summary(pairs_seconds),
        "criterion_aggregation_seconds": summary(criteria_seconds),
        "fit_seconds": summary(fit_seconds),
        "endpoint_seconds": summary(endpoint_seconds),
        "spearman_vs_truth": round(float(spearmanr(ordered, true).statistic), 4),
        "tie_parameter": table["tie_parameter"],
        "groups": table["groups"],
        "plan": [line for line in explain.splitlines() if "Execution Time" in line],
    }


def report_peak() -> None:
    """In a child: writes its peak resident set (VmHWM, KiB) to $BENCH_PEAK_FILE at exit.

    Not ru_maxrss: Linux carries the parent's resident set at fork into the child's maxrss
    across exec, so a child of this (large) process would report the parent's size.
    """
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    Path(os.environ["BENCH_PEAK_FILE"]).write_text(peak)


def child(code: str, env: dict[str, str]) -> dict[str, Any]:
    """Runs `python -c code` with report_peak at exit; its wall time and peak resident set."""
    launcher = f"import atexit; from bench.bench_results import report_peak; atexit.register(report_peak); {code}"
    with tempfile.NamedTemporaryFile(prefix="bench-peak-") as peak:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", launcher],
            cwd=ROOT,
            env={**os.environ, **env, "BENCH_PEAK_FILE": peak.name},
            check=True,
        )
        seconds = time.perf_counter() - started
        kib = int(Path(peak.name).read_text())
    return {"seconds": round(seconds, 1), "peak_mb": round(kib / 1024, 1)}


def merge_family(campaign_id: int) -> int:
    """Moves every task of the family into its first campaign, so one export holds them all.

    A bulk move with the audit triggers off (`session_replication_role = replica`), like the load.
    """
    from django.db import connection, transaction

    from reviews import results
    from tasks.models import Campaign, Task

    family = results.campaign_family(Campaign.objects.get(pk=campaign_id))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            f'UPDATE "{Task._meta.db_table}" SET campaign_id = %s WHERE campaign_id = ANY(%s)',
            [family[0], family],
        )
        cursor.execute("ANALYZE")
    return family[0]


def stream_endpoint(campaign_id: int, name: str, username: str) -> None:
    """Child process: GET the export endpoint through Django's handler as a lead, discarding
    the body. Loads the URL conf first, as a web worker has."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    import marlin.urls  # noqa: F401

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    response = client.get(f"/api/v1/campaigns/{campaign_id}/export/", {"format": name})
    assert response.status_code == 200, response.status_code
    size = sum(len(chunk) for chunk in response.streaming_content)
    print(json.dumps({"bytes": size}), file=sys.stderr)


def measure_export(campaign_id: int, env: dict[str, str]) -> dict[str, Any]:
    baseline = child(
        "import django; django.setup(); import reviews.export, "
        "reviews.management.commands.export_preferences",
        env,
    )
    report: dict[str, Any] = {"baseline_peak_mb": baseline["peak_mb"]}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        for name in ("jsonl", "parquet"):
            path = Path(folder) / f"preferences.{name}"
            argv = ["manage.py", "export_preferences", str(campaign_id), str(path), "--quiet"]
            run = child(
                f"import runpy, sys; sys.argv = {argv!r}; runpy.run_path('manage.py', run_name='__main__')",
                env,
            )
            run["file_mb"] = round(path.stat().st_size / 2**20, 1)
            if name == "parquet":
                import pyarrow.parquet as pq

                run["rows"] = pq.ParquetFile(path).metadata.num_rows
            else:
                with path.open("rb") as lines:
                    run["rows"] = sum(1 for _ in lines)
            run["rows_per_second"] = round(run["rows"] / run["seconds"])
            report[name] = run
            print(json.dumps({name: run}), file=sys.stderr)
    for name in ("jsonl", "parquet"):
        run = child(
            f"from bench.bench_results import stream_endpoint; "
            f"stream_endpoint({campaign_id}, {name!r}, 'bench-lead')",
            env,
        )
        run["rows_per_second"] = round(report[name]["rows"] / run["seconds"])
        report[f"endpoint_{name}"] = run
        print(json.dumps({f"endpoint_{name}": run}), file=sys.stderr)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument(
        "--keep-services", action="store_true", help="leave PostgreSQL running (prints where)"
    )
    args = parser.parse_args()
    load_average = os.getloadavg()
    services = Services(local_folder("bench-results."))
    try:
        env = services.start().env
        os.environ.update(django_env(env))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        loaded = load(args.models, args.judgments)
        print(
            json.dumps({k: v for k, v in loaded.items() if k.endswith("seconds")}), file=sys.stderr
        )
        board = measure_leaderboard(
            loaded["campaign"], loaded["true"], loaded["slugs"], args.rounds, args.runs
        )
        print(json.dumps(board), file=sys.stderr)
        report: dict[str, Any] = {
            "cpus": os.cpu_count(),
            "load_average_at_start": load_average,
            "models": args.models,
            "load": {k: v for k, v in loaded.items() if k.endswith("seconds")},
            "leaderboard": board,
        }
        if not args.skip_export:
            from django.db import connections

            exported = merge_family(loaded["campaign"])
            connections.close_all()
            report["export"] = measure_export(exported, django_env(env))
        print(json.dumps(report, indent=2))
        missed = board["fit_seconds"]["max"] > FIT_GOAL_SECONDS or any(
            report.get("export", {}).get(name, {}).get("peak_mb", 0) > EXPORT_GOAL_MB
            for name in ("jsonl", "parquet", "endpoint_jsonl", "endpoint_parquet")
        )
        return 1 if missed else 0
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep_services:
            print(f"services kept: scripts/services.sh stop {services.folder}", file=sys.stderr)
        else:
            services.remove()


if __name__ == "__main__":
    sys.exit(main())
