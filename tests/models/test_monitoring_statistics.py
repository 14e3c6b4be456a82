"""Monitoring statistics against known answers: brute-force loops over the definitions, published
figures, hand arithmetic, and simulations of the tests' behaviour under their null hypotheses."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.monitoring import (
    auc_drop_test,
    auc_variance,
    expected_auc,
    expected_default_rate,
    feature_psi,
    matrix_weighted_bandwidth,
    migration_z_tests,
)
from models.validation import auc

# MathWorks' risk.validation.matrixWeightedBandwidth example (ECB section 2.5.5.1):
# lower MWB 0.3306, upper MWB 0.6066
MATHWORKS_COUNTS = np.array(
    [[10, 8, 15, 9, 10], [11, 9, 13, 9, 8], [0, 10, 10, 11, 10], [0, 0, 9, 11, 11],
     [0, 0, 0, 11, 10]]
)  # fmt: skip


def mwb_by_loops(counts: np.ndarray) -> tuple[float, float]:
    """The ECB formulas term by term, grades numbered 1..K: N_i p_ij = N_ij."""
    k = len(counts)
    n_i = counts.sum(axis=1)
    p = np.divide(counts, n_i[:, None], out=np.zeros(counts.shape), where=n_i[:, None] > 0)
    up_num = up_den = low_num = low_den = 0.0
    for i in range(1, k + 1):
        reach = max(abs(i - k), abs(i - 1))
        for j in range(1, k + 1):
            term = n_i[i - 1] * p[i - 1, j - 1]
            if j > i:
                up_num += abs(i - j) * term
                up_den += reach * term
            elif j < i:
                low_num += abs(i - j) * term
                low_den += reach * term
    return (up_num / up_den if up_den else 0.0), (low_num / low_den if low_den else 0.0)


def test_the_bandwidth_matches_the_published_example_and_the_formula_term_by_term():
    upper, lower = matrix_weighted_bandwidth(MATHWORKS_COUNTS)
    assert round(upper, 4) == 0.6066 and round(lower, 4) == 0.3306
    rng = np.random.default_rng(1)
    for _ in range(20):
        counts = rng.integers(0, 30, size=(7, 7)) * (rng.random((7, 7)) < 0.7)
        assert np.allclose(matrix_weighted_bandwidth(counts), mwb_by_loops(counts))


def test_the_bandwidth_is_zero_without_moves_and_one_when_every_move_goes_as_far_as_it_can():
    assert matrix_weighted_bandwidth(np.diag([5, 3, 4, 2])) == (0.0, 0.0)
    farthest = np.zeros((4, 4))
    farthest[0, 3], farthest[3, 0], farthest[1, 3], farthest[2, 0] = 5, 7, 2, 3
    assert matrix_weighted_bandwidth(farthest) == (1.0, 1.0)
    with pytest.raises(ValueError, match="square"):
        matrix_weighted_bandwidth(np.ones((2, 3)))


def test_the_migration_z_tests_by_hand():
    counts = np.array([[6, 3, 1], [1, 2, 7], [0, 0, 4]])
    table = migration_z_tests(counts, ["A", "B", "C"]).set_index(["before", "after"])
    # row A (N = 10): (A, B) against the diagonal .6, (A, C) against (A, B) .3
    z_ab = (0.6 - 0.3) / math.sqrt((0.3 * 0.7 + 0.6 * 0.4 + 2 * 0.3 * 0.6) / 10)
    z_ac = (0.3 - 0.1) / math.sqrt((0.1 * 0.9 + 0.3 * 0.7 + 2 * 0.1 * 0.3) / 10)
    # row B: (B, C) = .7 lies above its neighbour on the diagonal .2: a violation
    z_bc = (0.2 - 0.7) / math.sqrt((0.7 * 0.3 + 0.2 * 0.8 + 2 * 0.7 * 0.2) / 10)
    z_ba = (0.2 - 0.1) / math.sqrt((0.1 * 0.9 + 0.2 * 0.8 + 2 * 0.1 * 0.2) / 10)
    for cell, z in {("A", "B"): z_ab, ("A", "C"): z_ac, ("B", "C"): z_bc, ("B", "A"): z_ba}.items():
        assert table.loc[cell, "z"] == pytest.approx(z)
        assert table.loc[cell, "p_value"] == pytest.approx(stats.norm.cdf(z))
    assert table.loc[("B", "C"), "p_value"] == pytest.approx(0.0249, abs=1e-4)
    assert table["violation"].to_dict() == {cell: cell == ("B", "C") for cell in table.index}
    # row C keeps everyone on the diagonal: its cells have no variance and are left out
    assert "C" not in table.index.get_level_values("before")


def test_the_migration_z_test_rejects_at_its_level_when_the_rates_are_equal():
    """At the null's boundary (a cell as likely as its neighbour) Phi(z) is uniform: 2,000
    independent rows, each with a cell (i, i + 1) as likely as its diagonal (i, i)."""
    rng = np.random.default_rng(7)
    rows = 2000
    counts = np.zeros((rows + 2, rows + 2))
    at = np.arange(rows)
    draws = rng.multinomial(400, [0.3, 0.3, 0.4], size=rows)
    for step in range(3):
        counts[at, at + step] = draws[:, step]
    table = migration_z_tests(counts)
    before, after = table["before"].astype(int), table["after"].astype(int)
    tested = table[(after == before + 1) & (before <= rows)]
    assert len(tested) == rows
    rejected = tested["p_value"] < 0.05
    assert 0.035 <= np.mean(rejected) <= 0.065


def delong_by_loops(y: np.ndarray, p: np.ndarray) -> float:
    """DeLong's variance with every placement value counted pair by pair."""
    pos, neg = p[y == 1], p[y == 0]

    def beats(a, b):
        return 1.0 if a > b else 0.5 if a == b else 0.0

    v10 = np.array([np.mean([beats(a, b) for b in neg]) for a in pos])
    v01 = np.array([np.mean([beats(a, b) for a in pos]) for b in neg])
    area = v10.mean()
    return float(
        np.sum((v10 - area) ** 2) / (len(pos) * (len(pos) - 1))
        + np.sum((v01 - area) ** 2) / (len(neg) * (len(neg) - 1))
    )


def test_the_auc_variance_matches_delongs_pairwise_definition_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(10):
        p = rng.integers(0, 6, size=40) / 10  # many ties
        y = (rng.random(40) < 0.3 + p).astype(float)
        y[:2], y[2:4] = 1, 0
        assert auc_variance(y, p) == pytest.approx(delong_by_loops(y, p), rel=1e-12)


def test_the_auc_variance_estimates_the_spread_of_the_auc_over_samples():
    rng = np.random.default_rng(11)
    y = np.r_[np.ones(60), np.zeros(240)]
    aucs, variances = [], []
    for _ in range(1500):
        p = np.where(y == 1, rng.normal(1.0, 1.0, y.size), rng.normal(0.0, 1.0, y.size))
        aucs.append(auc(y, p))
        variances.append(auc_variance(y, p))
    assert np.mean(variances) == pytest.approx(np.var(aucs, ddof=1), rel=0.12)


def test_the_ecb_auc_test_statistic_and_its_one_sided_p_value():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0], dtype=float)
    p = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.4, 0.6, 0.3, 0.05])
    current = auc(y, p)
    result = auc_drop_test(0.95, y, p)
    s = math.sqrt(delong_by_loops(y, p))
    assert result.auc_current == pytest.approx(current)
    assert result.s_current == pytest.approx(s)
    assert result.statistic == pytest.approx((0.95 - current) / s)
    assert result.p_value == pytest.approx(1 - stats.norm.cdf((0.95 - current) / s))
    same = auc_drop_test(current, y, p)
    assert same.statistic == pytest.approx(0.0) and same.p_value == pytest.approx(0.5)
    assert auc_drop_test(0.5, y, p).p_value > 0.9  # the AUC rose: no drop


def test_the_ecb_auc_test_rejects_at_its_level_when_the_auc_has_not_changed():
    """Scores N(0, 1) and N(1, 1): the true AUC is Phi(1 / sqrt 2); the test's size is 5 %."""
    rng = np.random.default_rng(5)
    true_auc = stats.norm.cdf(1 / math.sqrt(2))
    y = np.r_[np.ones(100), np.zeros(400)]
    rejected = [auc_drop_test(true_auc, y, rng.normal(y, 1.0)).p_value < 0.05 for _ in range(2000)]
    assert 0.035 <= np.mean(rejected) <= 0.07


def expected_auc_by_loops(p: np.ndarray, s: np.ndarray) -> float:
    num = den = 0.0
    for i, j in itertools.permutations(range(len(p)), 2):
        weight = p[i] * (1 - p[j])
        den += weight
        num += weight * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


def test_the_expected_auc_matches_the_pair_loop_with_ties_and_a_separate_score():
    rng = np.random.default_rng(2)
    p = np.round(rng.beta(1, 8, size=30), 2)
    assert expected_auc(p) == pytest.approx(expected_auc_by_loops(p, p), rel=1e-12)
    score = rng.integers(0, 5, size=30).astype(float)
    assert expected_auc(p, score) == pytest.approx(expected_auc_by_loops(p, score), rel=1e-12)
    assert expected_auc(np.full(10, 0.2)) == pytest.approx(0.5)
    assert expected_default_rate(p) == pytest.approx(p.mean())


def test_the_expected_auc_is_what_outcomes_drawn_from_the_pds_give():
    """Drawing defaults from the PDs: expected ranked pairs over expected pairs."""
    rng = np.random.default_rng(9)
    p = rng.beta(0.8, 6, size=300)
    y = rng.random((4000, p.size)) < p  # 4000 books of outcomes
    order = np.argsort(p)
    ys = y[:, order]
    neg_below = np.cumsum(~ys, axis=1) - ~ys  # ties have probability zero here
    ranked = np.sum(ys * neg_below, axis=1)
    pairs = ys.sum(axis=1) * (~ys).sum(axis=1)
    assert ranked.mean() / pairs.mean() == pytest.approx(expected_auc(p), abs=2e-3)


def test_feature_psi_finds_the_feature_that_moved_and_reads_categories():
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({
        "steady": rng.normal(size=3000), "moved": rng.normal(size=3000),
        "region": rng.choice(["north", "south"], size=3000), "empty": np.nan,
    })  # fmt: skip
    current = pd.DataFrame({
        "steady": rng.normal(size=2000), "moved": rng.normal(1.0, 1.0, size=2000),
        "region": rng.choice(["north", "south"], p=[0.6, 0.4], size=2000), "empty": 1.0,
    })  # fmt: skip
    table = feature_psi(reference, current, ["steady", "moved", "region", "empty", "absent"])
    assert table["feature"].tolist()[0] == "moved"
    rows = table.set_index("feature")
    assert rows.loc["moved", "verdict"] == "shift" and rows.loc["steady", "verdict"] == "stable"
    # categories: (0.6 - 0.5) ln(1.2) + (0.4 - 0.5) ln(0.8) = 0.04 with these shares
    assert rows.loc["region", "kind"] == "categorical"
    assert rows.loc["region", "psi"] == pytest.approx(0.0405, abs=0.03)
    assert set(rows.index) == {"steady", "moved", "region"}
    assert table["psi"].is_monotonic_decreasing
