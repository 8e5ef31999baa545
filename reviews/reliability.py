"""How far the reviewers can be trusted: inter-rater agreement and position bias.

Pure functions over aggregated counts; the database does the counting (reviews/results.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import krippendorff
import numpy as np
from scipy.stats import binomtest


def value_counts_matrix(
    cells: Iterable[tuple[Any, float, int]],
) -> tuple[np.ndarray, list[float]]:
    """(unit, value, count) rows into the units x values matrix `krippendorff.alpha` reads."""
    per_unit: dict[Any, dict[float, int]] = defaultdict(dict)
    for unit, value, count in cells:
        per_unit[unit][value] = per_unit[unit].get(value, 0) + count
    domain = sorted({v for values in per_unit.values() for v in values})
    column = {v: i for i, v in enumerate(domain)}
    matrix = np.zeros((len(per_unit), len(domain)), dtype=int)
    for row, values in enumerate(per_unit.values()):
        for value, count in values.items():
            matrix[row, column[value]] = count
    return matrix, domain


def alpha_interval(matrix: np.ndarray, domain: list[float]) -> float | None:
    """Krippendorff's alpha at the interval level; None where it is undefined.

    Undefined with fewer than two pairable values, or when every value is the same (no
    variation: the expected disagreement is zero).
    """
    pairable = matrix[matrix.sum(axis=1) >= 2]
    if pairable.sum() < 2 or len(domain) < 2:
        return None
    if np.count_nonzero(pairable.sum(axis=0)) < 2:
        return None
    value = krippendorff.alpha(
        value_counts=pairable, value_domain=domain, level_of_measurement="interval"
    )
    return None if np.isnan(value) else round(float(value), 4)


def exact_agreement(matrix: np.ndarray) -> float | None:
    """Share of pairs of reviewers, within a unit, who gave the same value."""
    per_unit = matrix.sum(axis=1)
    pairs = float((per_unit * (per_unit - 1)).sum())
    if not pairs:
        return None
    return round(float((matrix * (matrix - 1)).sum()) / pairs, 4)


def sign(value: float) -> int:
    return (value > 0) - (value < 0)


def preference_sign_agreement(rounds: Iterable[list[float]]) -> dict[str, Any]:
    """Per closed round, whether every reviewer's preference has the same sign (0 is a sign).

    Also the pairwise rate: the share of pairs of reviewers of one round who agree.
    """
    rounds = [r for r in rounds if len(r) >= 2]
    unanimous = sum(1 for r in rounds if len({sign(p) for p in r}) == 1)
    agreeing = pairs = 0
    for preferences in rounds:
        signs = [sign(p) for p in preferences]
        for i in range(len(signs)):
            for j in range(i + 1, len(signs)):
                pairs += 1
                agreeing += signs[i] == signs[j]
    return {
        "rounds": len(rounds),
        "unanimous": unanimous,
        "unanimous_rate": round(unanimous / len(rounds), 4) if rounds else None,
        "pairs": pairs,
        "pairwise_rate": round(agreeing / pairs, 4) if pairs else None,
    }


def position_bias(a_wins: int, b_wins: int, ties: int) -> dict[str, Any]:
    """How often slot A wins among decided comparisons, with an exact binomial test against 50%."""
    decided = a_wins + b_wins
    result: dict[str, Any] = {
        "judgments": decided + ties,
        "a_wins": a_wins,
        "b_wins": b_wins,
        "ties": ties,
        "a_win_rate": round(a_wins / decided, 4) if decided else None,
        "test": "exact two-sided binomial test of A's wins among decided comparisons vs 0.5",
        "p_value": None,
        "ci95": None,
    }
    if decided:
        test = binomtest(a_wins, decided, 0.5)
        interval = test.proportion_ci(confidence_level=0.95)
        result["p_value"] = round(float(test.pvalue), 6)
        result["ci95"] = [round(float(interval.low), 4), round(float(interval.high), 4)]
    return result
