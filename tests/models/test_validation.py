import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from models.validation import (
    auc,
    auc_with_ci,
    binomial_test,
    brier_score,
    calibration_table,
    expected_calibration_error,
    gini,
    hosmer_lemeshow,
    jeffreys_by_grade,
    jeffreys_test,
    ks_statistic,
    log_loss,
    migration_matrix,
    psi,
    psi_categorical,
    psi_table,
    psi_verdict,
    summary_metrics,
    traffic_light,
)

# six customers: defaults score 0.35, 0.8, 0.9; non-defaults 0.1, 0.2, 0.4
Y6 = np.array([0, 0, 1, 1, 0, 1])
P6 = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])


def test_auc_by_hand_pair_counting():
    # pairs (default above non-default): 0.35 beats 2, 0.8 beats 3, 0.9 beats 3 -> 8 of 9
    assert auc(Y6, P6) == pytest.approx(8 / 9)
    assert auc(Y6, P6) == pytest.approx(roc_auc_score(Y6, P6))


def test_auc_counts_ties_as_half():
    # default 0.5 ties non-default 0.5 (1/2), beats 0.2 (1); default 0.7 beats both (2) -> 3.5/4
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.7]) == pytest.approx(0.875)


@pytest.mark.parametrize("decimals", [None, 0])  # row draws; multinomial counts per group
def test_auc_ci_matches_hanley_mcneil_width(decimals):
    rng = np.random.default_rng(3)
    y = (rng.random(600) < 0.2).astype(float)
    score = rng.normal(size=600) + 1.2 * y
    if decimals is not None:  # about 8 distinct scores for 600 rows
        score = np.round(score, decimals)
    result = auc_with_ci(y, score, n_boot=1000, seed=0)
    a, n1, n0 = result.auc, y.sum(), 600 - y.sum()
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    assert a == pytest.approx(roc_auc_score(y, score))
    assert result.lower < a < result.upper
    assert (result.upper - result.lower) / 2 == pytest.approx(1.96 * se, rel=0.2)
    assert auc_with_ci(y, score, n_boot=1000, seed=0) == result
    assert auc_with_ci(y, score, n_boot=1000, seed=1) != result


def test_auc_ci_point_is_exact_with_many_ties():
    rng = np.random.default_rng(4)
    y = (rng.random(3000) < 0.1).astype(float)
    score = np.round(rng.normal(size=3000) + y, 1)  # few distinct values, ties across classes
    result = auc_with_ci(y, score, n_boot=100)
    assert result.auc == pytest.approx(roc_auc_score(y, score))
    assert result.lower < result.auc < result.upper


def test_auc_ci_of_perfect_separation_is_degenerate():
    result = auc_with_ci([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.9], n_boot=50)
    assert tuple(result) == (1.0, 1.0, 1.0)


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="both defaults and non-defaults"):
        auc([0, 0], [0.1, 0.2])


def test_gini():
    assert gini(0.75) == pytest.approx(0.5)
    assert gini(0.5) == pytest.approx(0.0)


def test_ks_six_points_by_hand():
    # ascending scores: .1(g) .2(g) .35(b) .4(g) .8(b) .9(b)
    # CDF bad:  0,   0,   1/3, 1/3, 2/3, 1
    # CDF good: 1/3, 2/3, 2/3, 1,   1,   1   -> largest gap 2/3
    assert ks_statistic(Y6, P6) == pytest.approx(2 / 3)
    assert ks_statistic(Y6, P6) == pytest.approx(stats.ks_2samp(P6[Y6 == 1], P6[Y6 == 0]).statistic)


def test_brier_and_log_loss_by_hand():
    y, p = [1, 0, 0, 1], [0.8, 0.1, 0.4, 0.5]
    # (0.2^2 + 0.1^2 + 0.4^2 + 0.5^2) / 4 = (0.04 + 0.01 + 0.16 + 0.25) / 4
    assert brier_score(y, p) == pytest.approx(0.115)
    hand = -(math.log(0.8) + math.log(0.9) + math.log(0.6) + math.log(0.5)) / 4
    assert log_loss(y, p) == pytest.approx(hand)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p))


def test_probability_metrics_reject_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        brier_score([1, np.nan], [0.1, 0.2])
    with pytest.raises(ValueError, match="probabilities"):
        log_loss([1, 0], [1.2, 0.2])
    with pytest.raises(ValueError, match="length"):
        brier_score([1, 0], [0.2])


ECE_Y = np.array([0, 0, 1, 0, 1, 1])
ECE_P = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.8])


def test_ece_uniform_bins_by_hand():
    # bin [0, .5): mean PD .25, rate 1/4 -> gap 0; bin [.5, 1]: mean PD .7, rate 1 -> gap .3
    # ECE = (4 * 0 + 2 * 0.3) / 6 = 0.1
    assert expected_calibration_error(ECE_Y, ECE_P, n_bins=2, strategy="uniform") == (
        pytest.approx(0.1)
    )


def test_ece_quantile_bins_by_hand():
    # median edge .35: {.1,.2,.3} mean .2 rate 1/3; {.4,.6,.8} mean .6 rate 2/3
    # ECE = (3 * 2/15 + 3 * 1/15) / 6 = 0.1
    table = calibration_table(ECE_Y, ECE_P, n_bins=2)
    assert table["n"].tolist() == [3, 3]
    assert table["defaults"].tolist() == [1, 2]
    np.testing.assert_allclose(table["pd_mean"], [0.2, 0.6])
    np.testing.assert_allclose(table["gap"], [1 / 3 - 0.2, 2 / 3 - 0.6])
    assert table["pd_min"].tolist() == [0.1, 0.4]
    assert expected_calibration_error(ECE_Y, ECE_P, n_bins=2) == pytest.approx(0.1)


def test_ece_quantile_bins_keep_tied_pds_together():
    p = np.array([0.01] * 8 + [0.5, 0.6])
    table = calibration_table(np.zeros(10), p, n_bins=5)
    assert table["n"].sum() == 10
    assert (table["pd_min"] == 0.01).sum() == 1


def test_traffic_light_thresholds():
    lights = traffic_light([0.0, 0.9499, 0.95, 0.9989, 0.999, 1.0])
    assert lights.tolist() == ["green", "green", "yellow", "yellow", "red", "red"]
    assert traffic_light(0.5) == "green"


def test_jeffreys_worked_example():
    # d=5 defaults of n=100 at PD 2 %: posterior Beta(5.5, 95.5)
    result = jeffreys_test(5, 100, 0.02)
    expected = stats.beta.cdf(0.02, 5.5, 95.5)
    assert result.p_value == pytest.approx(expected)
    assert result.confidence == pytest.approx(1 - expected)
    assert 0.001 < expected < 0.05
    assert result.light == "yellow"


def test_jeffreys_green_and_red():
    assert jeffreys_test(2, 100, 0.02).light == "green"
    red = jeffreys_test(10, 100, 0.02)
    assert red.p_value == pytest.approx(stats.beta.cdf(0.02, 10.5, 90.5))
    assert red.light == "red"
    with pytest.raises(ValueError, match="defaults <= n"):
        jeffreys_test(5, 3, 0.02)


def test_binomial_worked_example():
    # P(X >= 5) for X ~ Bin(100, 0.02) = 1 - sum_{k<5} C(100,k) .02^k .98^(100-k)
    below = sum(math.comb(100, k) * 0.02**k * 0.98 ** (100 - k) for k in range(5))
    result = binomial_test(5, 100, 0.02)
    assert result.p_value == pytest.approx(1 - below)  # 0.0508: exact test is more lenient
    assert result.light == "green"
    assert binomial_test(7, 100, 0.02).light == "yellow"
    assert binomial_test(0, 100, 0.02).p_value == pytest.approx(1.0)


def test_jeffreys_by_grade_matches_single_tests():
    frame = pd.DataFrame(
        {
            "grade": ["R2"] * 100 + ["R1"] * 50,
            "pd": [0.02] * 100 + [0.001] * 50,
            "y": [1] * 5 + [0] * 95 + [0] * 50,
        }
    )
    table = jeffreys_by_grade(frame, grades=["R1", "R2", "R3"])
    assert table["grade"].tolist() == ["R1", "R2"]
    r2 = table.set_index("grade").loc["R2"]
    single = jeffreys_test(5, 100, 0.02)
    assert (r2["n"], r2["defaults"]) == (100, 5)
    assert r2["p_value"] == pytest.approx(single.p_value)
    assert r2["light"] == single.light == "yellow"
    assert table.set_index("grade").loc["R1", "light"] == "green"
    unordered = jeffreys_by_grade(frame.rename(columns={"y": "default_flag"}), y_col="default_flag")
    assert unordered["grade"].tolist() == ["R1", "R2"]
    with pytest.raises(KeyError, match="y_col"):
        jeffreys_by_grade(frame.drop(columns="y"))


def test_hosmer_lemeshow_by_hand():
    p = np.array([0.05, 0.1, 0.2, 0.25, 0.4, 0.45, 0.6, 0.65, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1, 1, 1])
    # five groups of two (deciles of risk): observed and expected defaults per group
    groups = [(0, 0.15), (1, 0.45), (1, 0.85), (2, 1.25), (2, 1.70)]
    hand = sum((o - e) ** 2 / e + (o - e) ** 2 / (2 - e) for o, e in groups)
    result = hosmer_lemeshow(y, p, n_groups=5)
    assert result.statistic == pytest.approx(hand)
    assert result.dof == 3
    assert result.p_value == pytest.approx(stats.chi2.sf(hand, 3))


def test_hosmer_lemeshow_needs_three_groups():
    with pytest.raises(ValueError, match="at least 3"):
        hosmer_lemeshow([0, 1, 0, 1], [0.1, 0.1, 0.2, 0.2])


def test_psi_hand_example_with_given_edges():
    expected = np.repeat([0.5, 1.5, 2.5, 3.5], 25)
    actual = np.repeat([0.5, 1.5, 2.5, 3.5], [10, 20, 30, 40])
    hand = (
        (0.1 - 0.25) * math.log(0.1 / 0.25)
        + (0.2 - 0.25) * math.log(0.2 / 0.25)
        + (0.3 - 0.25) * math.log(0.3 / 0.25)
        + (0.4 - 0.25) * math.log(0.4 / 0.25)
    )  # 0.2282
    value = psi(expected, actual, bins=[0, 1, 2, 3, 4], smoothing=0)
    assert value == pytest.approx(hand)
    assert psi_verdict(value) == "investigate"


def test_psi_smoothing_keeps_empty_bins_finite():
    # counts e [2, 2], a [4, 0] + 0.5 each: e shares [.5, .5], a shares [.9, .1]
    value = psi([0.5, 0.5, 1.5, 1.5], [0.5] * 4, bins=[0, 1, 2])
    assert value == pytest.approx(0.4 * math.log(1.8) - 0.4 * math.log(0.2))
    assert math.isinf(psi([0.5, 0.5, 1.5, 1.5], [0.5] * 4, bins=[0, 1, 2], smoothing=0))


def test_psi_missing_values_get_their_own_bin():
    table = psi_table([0.5, 0.5, np.nan, np.nan], [0.5, 0.5, 0.5, np.nan], bins=[0, 1])
    assert table["bin"].tolist() == ["[-inf, inf)", "<missing>"]
    assert table["expected_n"].tolist() == [2, 2]
    assert table["actual_n"].tolist() == [3, 1]


def test_psi_quantile_bins_detect_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert psi(reference, rng.normal(size=5000)) < 0.01
    assert psi_verdict(psi(reference, rng.normal(loc=1.0, size=5000))) == "shift"


def test_psi_categorical_by_hand():
    expected = ["a"] * 50 + ["b"] * 50
    actual = ["a"] * 80 + ["b"] * 20
    hand = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert psi_categorical(expected, actual, smoothing=0) == pytest.approx(hand)
    with_new = psi_categorical(["a", "b"], ["a", "c", None], smoothing=0.5)
    assert np.isfinite(with_new) and with_new > 0


def test_psi_verdict_thresholds():
    assert [psi_verdict(v) for v in (0.0, 0.0999, 0.10, 0.2499, 0.25, 3.0)] == [
        "stable", "stable", "investigate", "investigate", "shift", "shift",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="NaN"):
        psi_verdict(float("nan"))


def test_migration_matrix_by_hand():
    grades = ["R1", "R2", "R3", "D"]
    before = ["R1", "R1", "R2", "R3", "R3", None]
    after = ["R1", "R2", "R1", "R3", "D", "R2"]
    result = migration_matrix(before, after, grades)
    assert result.counts.loc["R1"].tolist() == [1, 1, 0, 0]
    assert result.counts.loc["R2"].tolist() == [1, 0, 0, 0]
    assert result.counts.loc["R3"].tolist() == [0, 0, 1, 1]
    assert result.rates.loc["R1"].tolist() == [0.5, 0.5, 0.0, 0.0]
    assert result.rates.loc["D"].isna().all()
    assert (result.n, result.n_excluded) == (5, 1)
    assert result.upgrade_share == pytest.approx(1 / 5)
    assert result.downgrade_share == pytest.approx(2 / 5)
    assert result.stable_share == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="R9"):
        migration_matrix(["R9"], ["R1"], grades)


def test_summary_metrics_keys_and_values():
    metrics = summary_metrics(Y6, P6, n_boot=20)
    assert metrics["auc"] == pytest.approx(8 / 9)
    assert metrics["gini"] == pytest.approx(7 / 9)
    assert metrics["ks"] == pytest.approx(2 / 3)
    assert set(metrics) == {
        "auc", "auc_lower", "auc_upper", "gini", "ks", "brier", "log_loss", "ece",
    }  # fmt: skip
