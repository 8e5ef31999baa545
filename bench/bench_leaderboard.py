"""Times the leaderboard fit on aggregated counts: it must not grow with the number of judgments.

    .venv/bin/python -m bench.bench_leaderboard [--models 50] [--rounds 200] [--runs 5]
        [--sizes 1000,100000,1000000]

For each size, draws that many synthetic judgments among `--models` model versions from known
strengths (10% ties), folds them into pairwise counts (numpy, standing in for the GROUP BY the
API runs in PostgreSQL), then times `reviews.leaderboard.leaderboard` on the counts: the
Bradley-Terry fit plus `--rounds` bootstrap refits. No database and no Django.

Prints a JSON report (medians over `--runs`) and exits 1 if any fit missed the goal (2 s), or if
the largest size took more than twice as long as the smallest (the fit must be flat).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from reviews import leaderboard as lb

GOAL_SECONDS = 2.0


def judgments(true: np.ndarray, size: int, rng: np.random.Generator) -> lb.Counts:
    n = len(true)
    i = rng.integers(0, n, size)
    j = (i + rng.integers(1, n, size)) % n
    p_i = 1 / (1 + np.exp(-(true[i] - true[j])))
    u = rng.random(size)
    tie = rng.random(size) < 0.1
    i_won, j_won = ~tie & (u < p_i), ~tie & (u >= p_i)
    wins = np.zeros((n, n))
    ties = np.zeros((n, n))
    np.add.at(wins, (i[i_won], j[i_won]), 1)
    np.add.at(wins, (j[j_won], i[j_won]), 1)
    np.add.at(ties, (i[tie], j[tie]), 1)
    return lb.Counts(list(range(n)), wins, ties + ties.T)


def run(models: int, rounds: int, runs: int, sizes: list[int]) -> dict[str, Any]:
    rng = np.random.default_rng(42)
    true = rng.normal(0, 1, models)
    results = []
    for size in sizes:
        aggregate, fit, fit_cpu = [], [], []
        table: dict[str, Any] = {}
        for _ in range(runs):
            started = time.perf_counter()
            counts = judgments(true, size, rng)
            aggregate.append(time.perf_counter() - started)
            started, cpu = time.perf_counter(), time.process_time()
            table = lb.leaderboard(counts, rounds=rounds, seed=0)
            fit.append(time.perf_counter() - started)
            fit_cpu.append(time.process_time() - cpu)
        estimate = {row["model_version"]: row["log_strength"] for row in table["ranking"]}
        results.append(
            {
                "judgments": size,
                "aggregate_seconds_median": round(statistics.median(aggregate), 4),
                "fit_seconds_median": round(statistics.median(fit), 4),
                "fit_seconds_max": round(max(fit), 4),
                # CPU time of the process (all threads): less sensitive to a busy machine.
                "fit_cpu_seconds_median": round(statistics.median(fit_cpu), 4),
                "spearman_vs_truth": round(
                    float(spearmanr([estimate[k] for k in range(models)], true).statistic), 4
                ),
            }
        )
    smallest, largest = results[0]["fit_seconds_median"], results[-1]["fit_seconds_median"]
    return {
        "models": models,
        "bootstrap_rounds": rounds,
        "runs": runs,
        "goal_seconds": GOAL_SECONDS,
        "results": results,
        "largest_over_smallest": round(largest / smallest, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    report = run(args.models, args.rounds, args.runs, sizes)
    print(json.dumps(report, indent=2))
    slow = [r for r in report["results"] if r["fit_seconds_max"] > GOAL_SECONDS]
    return 1 if slow or report["largest_over_smallest"] > 2 else 0


if __name__ == "__main__":
    sys.exit(main())
