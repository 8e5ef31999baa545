"""Leaderboard math: pairwise counts, a Bradley-Terry fit with bootstrap intervals, score means.

Pure functions over aggregated counts (numpy and scipy, no database), so the cost of a fit
depends on the number of model versions, never on the number of judgments behind the counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import expit, log_expit

METHOD = (
    "Bradley-Terry maximum likelihood on aggregated pairwise counts; a tie counts as half a win "
    "for each side; a weak Gaussian prior (sd {prior_sd:g} on the log-strength) keeps unbeaten "
    "and winless model versions finite. 95% intervals: percentile bootstrap, {rounds} multinomial "
    "resamples of the judgments (seed {seed}). Ratings on the Elo scale: 1000 + 400 * log10(strength), "
    "strengths centred on their geometric mean."
)
ELO_SCALE = 400 / math.log(10)


@dataclass(frozen=True)
class PairCount:
    """Judgments between two model versions: `a` won `wins`, lost `losses`, tied `ties`."""

    a: Any
    b: Any
    wins: int
    ties: int
    losses: int


@dataclass(frozen=True)
class Counts:
    """Outcome counts per ordered pair, as matrices over `keys`.

    `wins[i, j]` is how often i beat j; `ties[i, j] == ties[j, i]` how often they tied.
    """

    keys: list[Any]
    wins: np.ndarray
    ties: np.ndarray

    @property
    def judgments(self) -> int:
        return int(self.wins.sum() + np.triu(self.ties).sum())


def counts_from_pairs(pairs: Iterable[PairCount], keys: Sequence[Any] = ()) -> Counts:
    """Folds per-pair counts (in either orientation, repeated pairs summed) into matrices."""
    pairs = list(pairs)
    ordered = list(keys)
    for pair in pairs:
        for key in (pair.a, pair.b):
            if key not in ordered:
                ordered.append(key)
    index = {key: i for i, key in enumerate(ordered)}
    n = len(ordered)
    wins = np.zeros((n, n))
    ties = np.zeros((n, n))
    for pair in pairs:
        i, j = index[pair.a], index[pair.b]
        if i == j:
            continue  # a model version against itself says nothing about its strength
        wins[i, j] += pair.wins
        wins[j, i] += pair.losses
        ties[i, j] += pair.ties
        ties[j, i] += pair.ties
    return Counts(ordered, wins, ties)


def _penalised_loglik(theta: np.ndarray, won: np.ndarray, prior: float) -> float:
    return float(
        (won * log_expit(theta[:, None] - theta[None, :])).sum() - 0.5 * prior * theta @ theta
    )


def fit_bradley_terry(
    won: np.ndarray,
    *,
    prior_sd: float = 10.0,
    start: np.ndarray | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> np.ndarray:
    """Log-strengths (mean zero) maximising the Bradley-Terry likelihood of `won[i, j]` wins.

    `won` may hold fractions (half wins from ties). Newton's method on the penalised
    log-likelihood, which is strictly concave, with step halving as a safeguard.
    """
    n = won.shape[0]
    if n == 0:
        return np.zeros(0)
    prior = 1.0 / prior_sd**2
    total = won + won.T
    theta = np.zeros(n) if start is None else start.astype(float).copy()
    current = _penalised_loglik(theta, won, prior)
    for _ in range(max_iter):
        p = expit(theta[:, None] - theta[None, :])  # p[i, j]: i beats j
        grad = (won - total * p).sum(axis=1) - prior * theta
        weights = total * p * p.T
        information = np.diag(weights.sum(axis=1) + prior) - weights
        step = np.linalg.solve(information, grad)
        scale = 1.0
        while True:
            candidate = theta + scale * step
            value = _penalised_loglik(candidate, won, prior)
            if value >= current - 1e-12 or scale < 1e-6:
                break
            scale /= 2
        theta, current = candidate, value
        if np.max(np.abs(scale * step)) < tol:
            break
    return theta - theta.mean()


def effective_wins(wins: np.ndarray, ties: np.ndarray) -> np.ndarray:
    return wins + 0.5 * ties


def bootstrap_bradley_terry(
    counts: Counts,
    *,
    rounds: int = 200,
    seed: int = 0,
    prior_sd: float = 10.0,
    estimate: np.ndarray | None = None,
) -> np.ndarray:
    """`rounds` x n log-strengths refitted on multinomial resamples of all judgments.

    Resampling the cells (pair, outcome) with the observed frequencies is the same as drawing
    the judgments with replacement, without ever expanding them.
    """
    n = len(counts.keys)
    upper = np.triu_indices(n, k=1)
    cells = np.concatenate(
        [counts.wins[upper], counts.wins.T[upper], counts.ties[upper]]
    )  # i beat j, j beat i, tie
    total = int(cells.sum().round())
    if total == 0 or n == 0:
        return np.zeros((rounds, n))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, cells / cells.sum(), size=rounds)
    m = len(upper[0])
    out = np.empty((rounds, n))
    for r, draw in enumerate(draws):
        wins = np.zeros((n, n))
        ties = np.zeros((n, n))
        wins[upper] = draw[:m]
        wins.T[upper] = draw[m : 2 * m]
        ties[upper] = draw[2 * m :]
        ties = ties + ties.T
        out[r] = fit_bradley_terry(
            effective_wins(wins, ties), prior_sd=prior_sd, start=estimate, max_iter=50
        )
    return out


def to_elo(theta: np.ndarray | float) -> np.ndarray | float:
    return 1000 + ELO_SCALE * theta


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def leaderboard(
    counts: Counts,
    *,
    labels: dict[Any, str] | None = None,
    rounds: int = 200,
    seed: int = 0,
    prior_sd: float = 10.0,
) -> dict[str, Any]:
    """The ranked table and pairwise counts, ready to serialise."""
    labels = labels or {}
    n = len(counts.keys)
    won = effective_wins(counts.wins, counts.ties)
    theta = fit_bradley_terry(won, prior_sd=prior_sd)
    samples = bootstrap_bradley_terry(
        counts, rounds=rounds, seed=seed, prior_sd=prior_sd, estimate=theta
    )
    low, high = np.percentile(samples, [2.5, 97.5], axis=0) if n else (np.zeros(0), np.zeros(0))
    rows = []
    for i, key in enumerate(counts.keys):
        wins = float(counts.wins[i].sum())
        losses = float(counts.wins[:, i].sum())
        ties = float(counts.ties[i].sum())
        judgments = wins + losses + ties
        rows.append(
            {
                "model_version": labels.get(key, key),
                "judgments": int(judgments),
                "wins": int(wins),
                "ties": int(ties),
                "losses": int(losses),
                "win_rate": _rate(wins, judgments),
                "tie_rate": _rate(ties, judgments),
                "loss_rate": _rate(losses, judgments),
                "rating": round(float(to_elo(theta[i])), 1),
                "rating_ci95": [round(float(to_elo(low[i])), 1), round(float(to_elo(high[i])), 1)],
                "log_strength": round(float(theta[i]), 4),
                "log_strength_ci95": [round(float(low[i]), 4), round(float(high[i]), 4)],
            }
        )
    order = sorted(range(n), key=lambda i: -theta[i])
    for rank, i in enumerate(order, start=1):
        rows[i]["rank"] = rank
    pairs = [
        {
            "model_version": labels.get(counts.keys[i], counts.keys[i]),
            "opponent": labels.get(counts.keys[j], counts.keys[j]),
            "judgments": int(counts.wins[i, j] + counts.wins[j, i] + counts.ties[i, j]),
            "wins": int(counts.wins[i, j]),
            "ties": int(counts.ties[i, j]),
            "losses": int(counts.wins[j, i]),
            "win_rate": _rate(
                counts.wins[i, j], counts.wins[i, j] + counts.wins[j, i] + counts.ties[i, j]
            ),
        }
        for i in range(n)
        for j in range(n)
        if i != j and counts.wins[i, j] + counts.wins[j, i] + counts.ties[i, j] > 0
    ]
    return {
        "method": METHOD.format(prior_sd=prior_sd, rounds=rounds, seed=seed),
        "judgments": counts.judgments,
        "bootstrap_rounds": rounds,
        "seed": seed,
        "ranking": [rows[i] for i in order],
        "pairs": pairs,
    }


def mean_ci(n: int, mean: float | None, sd: float | None, level: float = 0.95) -> dict[str, Any]:
    """Mean with a Student-t interval from (count, mean, sample sd), as SQL aggregates them."""
    if not n or mean is None:
        return {"n": 0, "mean": None, "ci95": None}
    if n < 2 or sd is None:
        return {"n": n, "mean": round(mean, 4), "ci95": None}
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": round(mean, 4), "ci95": [round(mean - half, 4), round(mean + half, 4)]}
