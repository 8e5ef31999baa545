"""Leaderboard math: pairwise counts, a Bradley-Terry fit with bootstrap intervals, score means.

Pure functions over aggregated counts (numpy and scipy, no database), so the cost of a fit
depends on the number of model versions, never on the number of judgments behind the counts.

Ties follow Davidson's (1970) extension of Bradley-Terry, with log-strengths t and a tie
parameter v: P(i beats j) = e^t_i / D and P(tie) = v e^((t_i + t_j) / 2) / D, where
D = e^t_i + e^t_j + v e^((t_i + t_j) / 2). Counting a tie as half a win under plain
Bradley-Terry would pull every strength towards the mean whenever ties happen, so the
intervals would miss the true strengths.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components

PRIOR_SD = 10.0
METHOD = (
    "Bradley-Terry with Davidson's tie model (a tie is its own outcome, more likely between "
    "close model versions; the tie parameter is fitted), maximum likelihood on aggregated "
    "pairwise counts; a weak Gaussian prior (sd {prior_sd:g}) on the log-strengths and the log "
    "tie parameter keeps unbeaten and winless model versions finite. 95% intervals: percentile "
    "bootstrap, {rounds} multinomial resamples of the judgments (seed {seed}), read at the "
    "order statistics 2.5% and 97.5% of rounds + 1. Ratings on the Elo scale: "
    "1000 + 400 * log10(strength), strengths centred on their geometric mean within a group. "
    "A group is the model versions linked by a chain of judgments: ratings compare only "
    "within a group, and a model version without judgments has none."
)
ELO_SCALE = 400 / math.log(10)
# Rounds fitted together: bounds the memory of the batched Newton steps (R x (n+1)^2 arrays).
_BATCH_CELLS = 4_000_000


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

    @property
    def per_pair(self) -> np.ndarray:
        return self.wins + self.wins.T + self.ties


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


class _Batch:
    """Penalised Davidson log-likelihood of R count tables at once, with its Newton step.

    Works on the unordered pairs (i < j) only: `ahead[r, p]` wins of i over j, `behind[r, p]`
    wins of j over i, `tied[r, p]` ties, for the pairs `first[p] = i`, `second[p] = j`.
    """

    def __init__(
        self,
        n: int,
        ahead: np.ndarray,
        behind: np.ndarray,
        tied: np.ndarray,
        prior: float,
    ) -> None:
        self.n = n
        self.first, self.second = np.triu_indices(n, k=1)
        self.net = ahead - behind
        self.total = ahead + behind + tied
        self.ties = tied.sum(axis=1)
        self.fit_ties = self.ties > 0  # no ties at all: v = 0, plain Bradley-Terry
        self.prior = prior

    def _per_model(self, per_pair: np.ndarray) -> np.ndarray:
        """Sums an antisymmetric per-pair term (i's side of pair (i, j)) into per-model totals."""
        full = np.zeros((per_pair.shape[0], self.n, self.n))
        full[:, self.first, self.second] = per_pair
        full[:, self.second, self.first] = -per_pair
        return full.sum(axis=2)

    def _parts(self, theta: np.ndarray, log_nu: np.ndarray) -> tuple[np.ndarray, ...]:
        """h = (t_i - t_j) / 2, e = exp(-|h|), v, and D / e^|h| = 1 + e^2 + v e (never overflows)."""
        half = (theta[:, self.first] - theta[:, self.second]) / 2
        nu = np.where(self.fit_ties, np.exp(log_nu), 0.0)[:, None]
        e = np.exp(-np.abs(half))
        return half, e, nu, 1 + e * e + nu * e

    def loglik(self, theta: np.ndarray, log_nu: np.ndarray) -> np.ndarray:
        half, _, _, scaled = self._parts(theta, log_nu)
        log_d = np.abs(half) + np.log(scaled)
        tie_part = np.where(self.fit_ties, self.ties * log_nu - 0.5 * self.prior * log_nu**2, 0.0)
        return (
            (self.net * half - self.total * log_d).sum(axis=1)
            + tie_part
            - 0.5 * self.prior * (theta**2).sum(axis=1)
        )

    def step(self, theta: np.ndarray, log_nu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        half, e, nu, scaled = self._parts(theta, log_nu)
        decided = (1 + e * e) / scaled  # P(i wins) + P(j wins)
        lead = np.sign(half) * (1 - e * e) / scaled  # P(i wins) - P(j wins)
        p_tie = nu * e / scaled
        r, n = theta.shape
        grad = np.empty((r, n + 1))
        grad[:, :n] = self._per_model((self.net - self.total * lead) / 2) - self.prior * theta
        grad[:, n] = np.where(
            self.fit_ties,
            self.ties - (self.total * p_tie).sum(axis=1) - self.prior * log_nu,
            0.0,
        )
        weights = self.total * (decided - lead**2) / 4
        information = np.zeros((r, n + 1, n + 1))
        information[:, self.first, self.second] = -weights
        information[:, self.second, self.first] = -weights
        diagonal = np.arange(n)
        information[:, diagonal, diagonal] = -information[:, :n, :n].sum(axis=2) + self.prior
        cross = self._per_model(-self.total * lead * p_tie / 2)
        information[:, :n, n] = cross
        information[:, n, :n] = cross
        information[:, n, n] = np.where(
            self.fit_ties,
            (self.total * p_tie * (1 - p_tie)).sum(axis=1) + self.prior,
            1.0,
        )
        step = np.linalg.solve(information, grad[:, :, None])[:, :, 0]
        return step[:, :n], step[:, n]


def _fit_batch(
    n: int,
    ahead: np.ndarray,
    behind: np.ndarray,
    tied: np.ndarray,
    *,
    prior_sd: float,
    start: np.ndarray | None,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Newton's method with step halving on R tables at once; the objective is concave."""
    batch = _Batch(n, ahead, behind, tied, 1.0 / prior_sd**2)
    r = ahead.shape[0]
    theta = np.zeros((r, n)) if start is None else np.broadcast_to(start, (r, n)).astype(float)
    log_nu = np.zeros(r)
    current = batch.loglik(theta, log_nu)
    for _ in range(max_iter):
        step_theta, step_nu = batch.step(theta, log_nu)
        scale = np.ones(r)
        while True:
            new_theta = theta + scale[:, None] * step_theta
            new_nu = log_nu + scale * step_nu
            value = batch.loglik(new_theta, new_nu)
            # Relative slack: at the optimum, rounding moves a sum of thousands of terms.
            worse = (value < current - 1e-10 * (1 + np.abs(current))) & (scale >= 1e-6)
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        theta, log_nu, current = new_theta, new_nu, value
        moved = max(np.abs(scale[:, None] * step_theta).max(), np.abs(scale * step_nu).max())
        if moved < tol:
            break
    return theta, np.where(batch.fit_ties, np.exp(log_nu), 0.0)


def groups_of(counts: Counts) -> np.ndarray:
    """Per model version, its group: the model versions linked to it by a chain of judgments."""
    n = len(counts.keys)
    if n == 0:
        return np.zeros(0, dtype=int)
    _, labels = connected_components(sparse.csr_matrix(counts.per_pair > 0), directed=False)
    return labels


def _centre(theta: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Log-strengths are defined up to a constant per group: mean zero within each."""
    out = theta.copy()
    for group in np.unique(groups):
        members = groups == group
        out[..., members] -= out[..., members].mean(axis=-1, keepdims=True)
    return out


def fit_davidson(
    wins: np.ndarray,
    ties: np.ndarray,
    *,
    prior_sd: float = PRIOR_SD,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> tuple[np.ndarray, float]:
    """Log-strengths (mean zero per group) and the tie parameter maximising the likelihood."""
    n = wins.shape[0]
    if n == 0:
        return np.zeros(0), 0.0
    first, second = np.triu_indices(n, k=1)
    theta, nu = _fit_batch(
        n,
        wins[None, first, second],
        wins[None, second, first],
        ties[None, first, second],
        prior_sd=prior_sd,
        start=None,
        tol=tol,
        max_iter=max_iter,
    )
    groups = groups_of(Counts(list(range(n)), wins, ties))
    return _centre(theta[0], groups), float(nu[0])


def fit_bradley_terry(wins: np.ndarray, *, prior_sd: float = PRIOR_SD) -> np.ndarray:
    """Log-strengths (mean zero per group) from win counts alone: Davidson's model without ties."""
    return fit_davidson(wins, np.zeros_like(wins), prior_sd=prior_sd)[0]


def bootstrap(
    counts: Counts,
    *,
    rounds: int = 200,
    seed: int = 0,
    prior_sd: float = PRIOR_SD,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """`rounds` x n log-strengths refitted on multinomial resamples of all judgments.

    Resampling the cells (pair, outcome) with the observed frequencies is the same as drawing
    the judgments with replacement, without ever expanding them. Refits are warm-started at
    `start` and run in batches.
    """
    n = len(counts.keys)
    upper = np.triu_indices(n, k=1)
    cells = np.concatenate(
        [counts.wins[upper], counts.wins.T[upper], counts.ties[upper]]
    )  # i beat j, j beat i, tie
    total = int(cells.sum().round())
    if total == 0 or n == 0:
        return np.zeros((rounds, n))
    draws = np.random.default_rng(seed).multinomial(total, cells / cells.sum(), size=rounds)
    m = len(upper[0])
    groups = groups_of(counts)
    out = np.empty((rounds, n))
    per_batch = max(1, _BATCH_CELLS // (n * n))
    for first in range(0, rounds, per_batch):
        draw = draws[first : first + per_batch].astype(float)
        theta, _ = _fit_batch(
            n,
            draw[:, :m],
            draw[:, m : 2 * m],
            draw[:, 2 * m :],
            prior_sd=prior_sd,
            start=start,
            tol=1e-9,
            max_iter=50,
        )
        out[first : first + len(draw)] = _centre(theta, groups)
    return out


def interval95(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval read at p * (rounds + 1): with 200 rounds, numpy's default reading
    (p * (rounds - 1)) narrows the interval to about 94% coverage."""
    low, high = np.percentile(samples, [2.5, 97.5], axis=0, method="weibull")
    return low, high


def to_elo(theta: np.ndarray | float) -> np.ndarray | float:
    return 1000 + ELO_SCALE * theta


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _ordered_groups(counts: Counts, theta: np.ndarray) -> list[list[int]]:
    """Groups of judged model versions, largest first; members strongest first."""
    judged = counts.per_pair.sum(axis=1) > 0
    labels = groups_of(counts)
    found: dict[int, list[int]] = {}
    for i in np.flatnonzero(judged):
        found.setdefault(int(labels[i]), []).append(int(i))
    members = [sorted(group, key=lambda i: -theta[i]) for group in found.values()]
    return sorted(members, key=lambda group: (-len(group), -theta[group[0]], group[0]))


def leaderboard(
    counts: Counts,
    *,
    labels: dict[Any, str] | None = None,
    rounds: int = 200,
    seed: int = 0,
    prior_sd: float = PRIOR_SD,
) -> dict[str, Any]:
    """The ranked table and pairwise counts, ready to serialise."""
    labels = labels or {}
    n = len(counts.keys)
    theta, nu = fit_davidson(counts.wins, counts.ties, prior_sd=prior_sd)
    samples = bootstrap(counts, rounds=rounds, seed=seed, prior_sd=prior_sd, start=theta)
    low, high = interval95(samples) if n else (np.zeros(0), np.zeros(0))
    rows = []
    for i, key in enumerate(counts.keys):
        wins = float(counts.wins[i].sum())
        losses = float(counts.wins[:, i].sum())
        ties = float(counts.ties[i].sum())
        judgments = wins + losses + ties
        rows.append(
            {
                "model_version": labels.get(key, key),
                "group": None,
                "rank": None,
                "judgments": int(judgments),
                "wins": int(wins),
                "ties": int(ties),
                "losses": int(losses),
                "win_rate": _rate(wins, judgments),
                "tie_rate": _rate(ties, judgments),
                "loss_rate": _rate(losses, judgments),
                "rating": None,
                "rating_ci95": None,
                "log_strength": None,
                "log_strength_ci95": None,
            }
        )
    groups = _ordered_groups(counts, theta)
    for number, group in enumerate(groups, start=1):
        for rank, i in enumerate(group, start=1):
            rows[i].update(
                group=number,
                rank=rank,
                rating=round(float(to_elo(theta[i])), 1),
                rating_ci95=[round(float(to_elo(low[i])), 1), round(float(to_elo(high[i])), 1)],
                log_strength=round(float(theta[i]), 4),
                log_strength_ci95=[round(float(low[i]), 4), round(float(high[i]), 4)],
            )
    ranked = [i for group in groups for i in group]
    unjudged = sorted(set(range(n)) - set(ranked))
    per_pair = counts.per_pair
    pairs = [
        {
            "model_version": labels.get(counts.keys[i], counts.keys[i]),
            "opponent": labels.get(counts.keys[j], counts.keys[j]),
            "judgments": int(per_pair[i, j]),
            "wins": int(counts.wins[i, j]),
            "ties": int(counts.ties[i, j]),
            "losses": int(counts.wins[j, i]),
            "win_rate": _rate(counts.wins[i, j], per_pair[i, j]),
        }
        for i in range(n)
        for j in range(n)
        if i != j and per_pair[i, j] > 0
    ]
    return {
        "method": METHOD.format(prior_sd=prior_sd, rounds=rounds, seed=seed),
        "judgments": counts.judgments,
        "bootstrap_rounds": rounds,
        "seed": seed,
        "tie_parameter": round(nu, 4),
        "groups": len(groups),
        "ranking": [rows[i] for i in ranked + unjudged],
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
