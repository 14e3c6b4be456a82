import math

import numpy as np
import pytest

from models.scaling import factor_offset, pd_from_score, score_from_pd


def test_base_odds_scores_base_score():
    assert score_from_pd(1 / 51) == 600


def test_doubling_the_odds_adds_pdo_points():
    assert score_from_pd(1 / 101) == 620
    assert score_from_pd(1 / 26) == 580


def test_hand_worked_pd_ten_percent():
    # factor = 20 / ln 2 = 28.8539; offset = 600 - 28.8539 * ln 50 = 487.1229
    # pd 0.1 -> odds 9 -> 487.1229 + 28.8539 * 2.1972 = 550.52 -> 551
    assert score_from_pd(0.1) == 551
    factor, offset = factor_offset()
    assert factor == pytest.approx(28.853901, abs=1e-6)
    assert offset == pytest.approx(487.122876, abs=1e-6)


def test_arrays_give_int64_and_custom_scaling():
    scores = score_from_pd(np.array([1 / 51, 1 / 101]), base_score=500, base_odds=50, pdo=40)
    assert scores.dtype == np.int64
    assert scores.tolist() == [500, 540]


def test_pd_from_score_inverts():
    assert pd_from_score(600) == pytest.approx(1 / 51)
    assert pd_from_score(620) == pytest.approx(1 / 101)
    p = np.array([0.001, 0.02, 0.3])
    factor, offset = factor_offset()
    exact = offset + factor * np.log((1 - p) / p)
    np.testing.assert_allclose(pd_from_score(exact), p)


def test_extreme_pds_are_clipped_and_bad_input_rejected():
    low, high = score_from_pd(np.array([1.0, 0.0]))
    factor, offset = factor_offset()
    assert low == round(offset + factor * math.log(1e-6 / (1 - 1e-6)))
    assert high == round(offset + factor * math.log((1 - 1e-6) / 1e-6))  # 886
    with pytest.raises(ValueError, match="NaN"):
        score_from_pd([0.1, np.nan])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        score_from_pd([1.5])
