"""Leaderboard and agreement math on plain numbers: no database."""

import math

import krippendorff
import numpy as np
import pytest
from scipy.stats import spearmanr

from reviews import leaderboard as lb
from reviews import reliability


def outcome_probabilities(true, nu):
    """Davidson's model: P(i beats j), P(j beats i), P(tie) for every ordered pair."""
    half = (true[:, None] - true[None, :]) / 2
    denominator = np.exp(half) + np.exp(-half) + nu
    return np.exp(half) / denominator, np.exp(-half) / denominator, nu / denominator


def expected_counts(true, nu, per_pair=1000.0):
    """Expected outcome counts under Davidson's model: their MLE is exactly (true, nu)."""
    true = np.asarray(true, dtype=float)
    win, _, tie = outcome_probabilities(true, nu)
    off_diagonal = 1 - np.eye(len(true))
    return lb.Counts(
        list(range(len(true))), per_pair * win * off_diagonal, per_pair * tie * off_diagonal
    )


def simulated(true, judgments, rng, nu=0.0):
    """`judgments` random pairs, each judged by a draw from Davidson's model (nu = 0: no ties)."""
    n = len(true)
    i = rng.integers(0, n, judgments)
    j = (i + rng.integers(1, n, judgments)) % n  # never i itself
    win, loss, _ = outcome_probabilities(true, nu)
    u = rng.random(judgments)
    i_won = u < win[i, j]
    j_won = ~i_won & (u < win[i, j] + loss[i, j])
    tied = ~i_won & ~j_won
    wins = np.zeros((n, n))
    ties = np.zeros((n, n))
    np.add.at(wins, (i[i_won], j[i_won]), 1)
    np.add.at(wins, (j[j_won], i[j_won]), 1)
    np.add.at(ties, (i[tied], j[tied]), 1)
    return lb.Counts(list(range(n)), wins, ties + ties.T)


def test_the_fit_recovers_known_strengths_from_expected_counts():
    counts = expected_counts(np.log([1, 2, 4]), 0.0)
    theta = lb.fit_bradley_terry(counts.wins, prior_sd=1e6)
    expected = np.log([1, 2, 4]) - np.log([1, 2, 4]).mean()
    assert theta == pytest.approx(expected, abs=1e-6)


def test_the_tie_model_recovers_strengths_and_the_tie_parameter():
    true = np.array([-0.8, 0.1, 0.3, 0.4])
    counts = expected_counts(true, 0.7)
    theta, nu = lb.fit_davidson(counts.wins, counts.ties, prior_sd=1e6)
    assert theta == pytest.approx(true - true.mean(), abs=1e-6)
    assert nu == pytest.approx(0.7, abs=1e-6)


def test_two_models_three_to_one_differ_by_log_three():
    counts = lb.counts_from_pairs([lb.PairCount("x", "y", wins=75, ties=0, losses=25)])
    theta = lb.fit_bradley_terry(counts.wins, prior_sd=1e6)
    assert theta[0] - theta[1] == pytest.approx(math.log(3), abs=1e-6)


def test_even_results_give_equal_strengths_and_the_share_of_ties_sets_the_tie_parameter():
    only_ties = lb.counts_from_pairs([lb.PairCount("x", "y", wins=0, ties=10, losses=0)])
    theta, _ = lb.fit_davidson(only_ties.wins, only_ties.ties)
    assert theta == pytest.approx([0, 0], abs=1e-9)
    # Equal strengths: P(tie) = v / (2 + v); half the judgments tied, so v = 2.
    mixed = lb.counts_from_pairs([lb.PairCount("x", "y", wins=5, ties=10, losses=5)])
    table = lb.leaderboard(mixed, rounds=20, prior_sd=1e6)
    assert "Davidson" in table["method"]
    assert table["tie_parameter"] == pytest.approx(2.0, abs=1e-3)
    assert [row["log_strength"] for row in table["ranking"]] == pytest.approx([0, 0], abs=1e-9)


def test_counting_ties_as_half_wins_would_pull_strengths_together():
    rng = np.random.default_rng(4)
    true = np.linspace(-1.5, 1.5, 10)
    counts = simulated(true, 100_000, rng, nu=1.0)
    half_wins = lb.fit_bradley_terry(counts.wins + counts.ties / 2)
    theta, _ = lb.fit_davidson(counts.wins, counts.ties)
    assert np.polyfit(true, half_wins, 1)[0] < 0.85  # shrunk towards the mean
    assert np.polyfit(true, theta, 1)[0] == pytest.approx(1.0, abs=0.03)


def test_counts_fold_both_orientations_and_rates_add_up():
    counts = lb.counts_from_pairs(
        [
            lb.PairCount("x", "y", wins=6, ties=2, losses=2),  # x at slot A
            lb.PairCount("y", "x", wins=1, ties=1, losses=3),  # y at slot A: x won 3
            lb.PairCount("x", "z", wins=4, ties=0, losses=1),
        ],
        keys=["x", "y", "z"],
    )
    table = lb.leaderboard(counts, labels={"x": "mx", "y": "my", "z": "mz"}, rounds=50)
    rows = {row["model_version"]: row for row in table["ranking"]}
    assert (rows["mx"]["wins"], rows["mx"]["ties"], rows["mx"]["losses"]) == (13, 3, 4)
    assert rows["mx"]["judgments"] == 20 and rows["mx"]["win_rate"] == 0.65
    assert (rows["my"]["wins"], rows["my"]["ties"], rows["my"]["losses"]) == (3, 3, 9)
    assert (rows["mz"]["wins"], rows["mz"]["losses"], rows["mz"]["judgments"]) == (1, 4, 5)
    assert table["judgments"] == 20  # every judgment once: 10 + 5 + 5
    pair = next(p for p in table["pairs"] if (p["model_version"], p["opponent"]) == ("mx", "my"))
    assert (pair["wins"], pair["ties"], pair["losses"], pair["judgments"]) == (9, 3, 3, 15)
    assert [row["rank"] for row in table["ranking"]] == [1, 2, 3]
    assert table["ranking"][0]["model_version"] == "mx"
    assert table["groups"] == 1 and {row["group"] for row in table["ranking"]} == {1}


def test_model_versions_never_judged_against_each_other_are_ranked_in_separate_groups():
    counts = lb.counts_from_pairs(
        [
            lb.PairCount("x", "y", wins=30, ties=5, losses=10),
            lb.PairCount("z", "w", wins=2, ties=0, losses=8),
            lb.PairCount("y", "v", wins=15, ties=3, losses=9),
        ],
        keys=["x", "y", "z", "w", "v", "unjudged"],
    )
    table = lb.leaderboard(counts, rounds=50)
    assert table["groups"] == 2
    order = [(r["model_version"], r["group"], r["rank"]) for r in table["ranking"]]
    assert order == [
        ("x", 1, 1),
        ("y", 1, 2),
        ("v", 1, 3),
        ("w", 2, 1),
        ("z", 2, 2),
        ("unjudged", None, None),
    ]
    rows = {r["model_version"]: r for r in table["ranking"]}
    for group in (["x", "y", "v"], ["w", "z"]):  # centred within each group
        assert sum(rows[k]["log_strength"] for k in group) == pytest.approx(0, abs=1e-3)
    assert rows["unjudged"]["rating"] is None and rows["unjudged"]["rating_ci95"] is None
    assert rows["unjudged"]["judgments"] == 0


def test_intervals_contain_the_estimate_and_are_reproducible():
    rng = np.random.default_rng(3)
    counts = simulated(np.array([0.0, 0.5, 1.0, -0.7]), 2000, rng, nu=0.3)
    first = lb.leaderboard(counts, rounds=200, seed=11)
    again = lb.leaderboard(counts, rounds=200, seed=11)
    assert first == again
    for row in first["ranking"]:
        low, high = row["log_strength_ci95"]
        assert low <= row["log_strength"] <= high and high - low > 0
        low, high = row["rating_ci95"]
        assert low <= row["rating"] <= high


def test_intervals_narrow_as_judgments_grow():
    rng = np.random.default_rng(5)
    true = np.array([0.0, 0.4, -0.4])
    width = {}
    for size in (300, 30_000):
        table = lb.leaderboard(simulated(true, size, rng, nu=0.5), rounds=100)
        low, high = table["ranking"][0]["log_strength_ci95"]
        width[size] = high - low
    assert width[30_000] < width[300] / 5


def test_an_unbeaten_and_a_winless_model_stay_finite():
    counts = lb.counts_from_pairs(
        [lb.PairCount("x", "y", wins=10, ties=0, losses=0), lb.PairCount("y", "z", 3, 0, 3)]
    )
    table = lb.leaderboard(counts, rounds=50)
    assert all(math.isfinite(row["rating"]) for row in table["ranking"])
    assert table["ranking"][0]["model_version"] == "x"
    assert table["ranking"][0]["rating"] > table["ranking"][1]["rating"] + 200


FIFTY = np.random.default_rng(7).normal(0, 1, 50)


def test_fifty_model_versions_are_ranked_as_their_true_strengths():
    rng = np.random.default_rng(8)
    counts = simulated(FIFTY, 200_000, rng, nu=0.5)
    assert 0.1 < counts.ties.sum() / 2 / counts.judgments < 0.25  # ties are common
    theta, nu = lb.fit_davidson(counts.wins, counts.ties)
    assert spearmanr(theta, FIFTY).statistic >= 0.98
    assert nu == pytest.approx(0.5, abs=0.02)


def test_intervals_cover_the_true_strengths_of_fifty_model_versions_95_percent_of_the_time():
    # 20 independent campaigns of 3,000 judgments among 50 model versions, 100 bootstrap rounds
    # each: 1,000 (model version, trial) cases. At a true coverage of 95% the pooled share has
    # a binomial sd of 0.0069; the bounds are 3 sd either side.
    rng = np.random.default_rng(13)
    true = FIFTY - FIFTY.mean()
    covered = cases = 0
    for trial in range(20):
        counts = simulated(true, 3000, rng, nu=0.5)
        theta, _ = lb.fit_davidson(counts.wins, counts.ties)
        low, high = lb.interval95(lb.bootstrap(counts, rounds=100, seed=trial, start=theta))
        covered += int(((low <= true) & (true <= high)).sum())
        cases += len(true)
    assert cases == 1000
    assert 0.95 - 0.021 <= covered / cases <= 0.95 + 0.021


def test_mean_ci_uses_the_student_t_interval():
    result = lb.mean_ci(4, 3.0, 1.0)
    assert result["n"] == 4 and result["mean"] == 3.0
    assert result["ci95"] == pytest.approx([3 - 1.5912, 3 + 1.5912], abs=1e-3)
    assert lb.mean_ci(1, 2.0, None) == {"n": 1, "mean": 2.0, "ci95": None}
    assert lb.mean_ci(0, None, None)["mean"] is None


# Agreement


HAND_WORKED = [  # (unit, value, count): three units, two reviewers each
    ("u1", 1, 2),
    ("u2", 2, 1),
    ("u2", 3, 1),
    ("u3", 3, 2),
]


def test_alpha_matches_a_hand_worked_example():
    # D_o = 2/6 (only u2 disagrees, by 1); values 1,1,2,3,3,3: D_e = 2*(2*1*1 + 2*3*4 + 1*3*1)/30.
    matrix, domain = reliability.value_counts_matrix(HAND_WORKED)
    assert reliability.alpha_interval(matrix, domain) == pytest.approx(
        1 - (1 / 3) / (58 / 30), abs=1e-4
    )
    assert reliability.exact_agreement(matrix) == pytest.approx(2 / 3, abs=1e-4)


def test_alpha_from_counts_matches_the_package_on_rater_data():
    rng = np.random.default_rng(2)
    truth = rng.integers(1, 6, 60)
    ratings = np.clip(truth + rng.integers(-1, 2, (4, 60)), 1, 5).astype(float)
    ratings[rng.random((4, 60)) < 0.2] = np.nan  # not every reviewer scores every unit
    cells = [
        (unit, float(value), 1)
        for rater in ratings
        for unit, value in enumerate(rater)
        if not np.isnan(value)
    ]
    matrix, domain = reliability.value_counts_matrix(cells)
    expected = krippendorff.alpha(reliability_data=ratings, level_of_measurement="interval")
    assert reliability.alpha_interval(matrix, domain) == pytest.approx(expected, abs=1e-4)


def test_alpha_is_undefined_without_variation_or_pairs():
    same, domain = reliability.value_counts_matrix([("u1", 3, 2), ("u2", 3, 3)])
    assert reliability.alpha_interval(same, domain) is None
    assert reliability.exact_agreement(same) == 1.0
    single, domain = reliability.value_counts_matrix([("u1", 3, 1), ("u2", 4, 1)])
    assert reliability.alpha_interval(single, domain) is None
    assert reliability.exact_agreement(single) is None


def test_preference_sign_agreement_counts_rounds_and_pairs():
    result = reliability.preference_sign_agreement([[-2, -1, -3], [1, -1, 2], [0]])
    assert result["rounds"] == 2 and result["unanimous"] == 1 and result["unanimous_rate"] == 0.5
    assert result["pairs"] == 6 and result["pairwise_rate"] == pytest.approx(4 / 6, abs=1e-4)


def test_position_bias_tests_slot_a_against_half():
    result = reliability.position_bias(a_wins=60, b_wins=40, ties=5)
    assert result["a_win_rate"] == 0.6 and result["judgments"] == 105
    assert result["p_value"] == pytest.approx(0.0569, abs=1e-3)
    low, high = result["ci95"]
    assert low < 0.6 < high
    assert reliability.position_bias(0, 0, 3)["p_value"] is None
