import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from models.calibration import (
    MIN_BLOCK_EVENTS,
    MIN_SLOPE_SHARE,
    PDCalibrator,
    _pool_blocks,
    fit_isotonic_knots,
    fit_monotone_log_odds,
    fit_platt,
)
from models.validation import expected_calibration_error, jeffreys_test, log_loss


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _book(n: int, seed: int):
    """True log-odds -3 + z; the model's raw log-odds 2z + 1 are too steep and too high."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    y = (rng.random(n) < _sigmoid(-3 + z)).astype(float)
    return 2 * z + 1, y


@pytest.fixture(scope="module")
def held_out():
    return _book(3000, 1)


@pytest.fixture(scope="module")
def test_set():
    return _book(3000, 2)


@pytest.mark.parametrize("method", ["platt", "isotonic", "auto"])
def test_calibration_lowers_ece(method, held_out, test_set):
    raw_test, y_test = test_set
    before = expected_calibration_error(y_test, _sigmoid(raw_test))
    calibrator = PDCalibrator(method=method).fit(*held_out)
    after = expected_calibration_error(y_test, calibrator.predict(raw_test))
    assert before > 0.1
    assert after < 0.02
    assert log_loss(y_test, calibrator.predict(raw_test)) < log_loss(y_test, _sigmoid(raw_test))


def test_platt_matches_hand_fit_logistic_regression(held_out, test_set):
    raw, y = held_out
    calibrator = PDCalibrator(method="platt", transform="identity").fit(raw, y)
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(raw[:, None], y)
    assert calibrator.state_["coef"] == pytest.approx(lr.coef_[0, 0], rel=1e-5)
    assert calibrator.state_["intercept"] == pytest.approx(lr.intercept_[0], rel=1e-5)
    raw_test = test_set[0]
    expected = np.clip(lr.predict_proba(raw_test[:, None])[:, 1], 0.0003, 1 - 1e-6)
    np.testing.assert_allclose(calibrator.predict(raw_test), expected, rtol=1e-5)


def test_platt_on_probabilities_uses_their_logit(held_out):
    raw, y = held_out
    probs = _sigmoid(raw)
    calibrator = PDCalibrator(method="platt").fit(probs, y)
    assert calibrator.transform_ == "logit"
    direct = PDCalibrator(method="platt", transform="identity").fit(raw, y)
    np.testing.assert_allclose(calibrator.predict(probs), direct.predict(raw), rtol=1e-6)


def test_floor_and_cap_hold(held_out):
    calibrator = PDCalibrator(method="platt", floor=0.0003).fit(*held_out)
    pds = calibrator.predict(np.array([-50.0, 0.0, 80.0]))
    assert pds[0] == 0.0003
    assert pds[-1] == 1 - 1e-6
    iso = PDCalibrator(method="isotonic", floor=0.001).fit(*held_out)
    assert iso.predict(np.linspace(-10, 10, 500)).min() >= 0.001


def test_isotonic_keeps_the_ranking_strictly_monotone(held_out, test_set):
    calibrator = PDCalibrator(method="isotonic").fit(*held_out)
    raw_test = np.sort(test_set[0])
    pds = calibrator.predict(raw_test)
    assert np.all(np.diff(pds[pds > 0.0003]) > 0)
    # no flat tail: the rows below the lowest block's centre once all shared its rate (24 %)
    _, counts = np.unique(pds, return_counts=True)
    assert counts.max() / pds.size < 0.01


def test_isotonic_follows_falling_scores_too(held_out, test_set):
    """A score where higher is safer (a credit score) gets PDs falling strictly with it."""
    raw, y = held_out
    calibrator = PDCalibrator(method="isotonic").fit(-raw, y)
    pds = calibrator.predict(np.sort(-test_set[0]))
    assert np.all(np.diff(pds[pds > 0.0003]) < 0)
    assert expected_calibration_error(test_set[1], calibrator.predict(-test_set[0])) < 0.02


def test_auto_picks_lower_log_loss_and_isotonic_for_plateaus():
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 3, size=4000)
    true_pd = np.select([x < 1, x < 2], [0.01, 0.5], 0.6)
    y = (rng.random(4000) < true_pd).astype(float)
    calibrator = PDCalibrator().fit(x, y)
    losses = calibrator.selection_log_loss_
    assert calibrator.selection_split_ == "stratified-kfold"
    assert calibrator.chosen_method_ == min(losses, key=losses.get) == "isotonic"


def test_auto_with_time_uses_out_of_time_split(held_out):
    raw, y = held_out
    months = np.repeat(np.arange(10), raw.size // 10)
    calibrator = PDCalibrator().fit(raw, y, time=months)
    assert calibrator.selection_split_ == "out-of-time"
    losses = calibrator.selection_log_loss_
    assert calibrator.chosen_method_ == min(losses, key=losses.get)


def test_fit_is_deterministic(held_out, test_set):
    a = PDCalibrator().fit(*held_out).predict(test_set[0])
    b = PDCalibrator().fit(*held_out).predict(test_set[0])
    np.testing.assert_array_equal(a, b)


def test_errors_say_what_to_do(held_out):
    with pytest.raises(RuntimeError, match="call fit"):
        PDCalibrator().predict([0.1])
    with pytest.raises(ValueError, match="both defaults and non-defaults"):
        PDCalibrator().fit([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="matured"):
        PDCalibrator().fit([0.1, 0.2], [0, np.nan])
    with pytest.raises(ValueError, match="method must be"):
        PDCalibrator(method="beta").fit(*held_out)


def _steep_low_tail(n: int, seed: int):
    """True log-odds -4 + 1.2 z: the best 5 % of rows default at about 0.2 %."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    return z, (rng.random(n) < _sigmoid(-4 + 1.2 * z)).astype(float)


def test_isotonic_gives_the_best_rows_the_low_pds_their_defaults_support():
    """5,000 held-out rows with 160 defaults, the best 5 % of a large test set defaulting at
    0.2 %. A flat tail held them at the lowest block's rate (0.7 %, 24 % of the rows on one PD);
    an unpooled one at PD 0 (floored: 0.03 %, Jeffreys red). The fitted tail gives them a PD
    near their default rate, with a green light, pooled or not."""
    raw, y = _steep_low_tail(5000, 0)
    raw_test, y_test = _steep_low_tail(100_000, 100)
    best = raw_test <= np.quantile(raw_test, 0.05)
    defaults, n = int(y_test[best].sum()), int(best.sum())
    assert (defaults, n) == (10, 5000)

    for min_events in (0, MIN_BLOCK_EVENTS):
        calibrator = PDCalibrator(method="isotonic", min_block_events=min_events).fit(raw, y)
        predicted = calibrator.predict(raw_test)[best].mean()
        assert defaults / n <= predicted < 2 * defaults / n
        assert jeffreys_test(defaults, n, predicted).light == "green"
    assert PDCalibrator(method="isotonic", min_block_events=0).fit(raw, y).state_["knots_y"][0] == 0
    pooled = PDCalibrator(method="isotonic").fit(raw, y)
    assert expected_calibration_error(y_test, pooled.predict(raw_test)) < 0.01


def _flat_low_tail(n: int, seed: int):
    """The best 14 % of rows default at 0.7 % whatever their score; above, log-odds rise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    logit = np.maximum(-5.0, -4 + 1.2 * z)
    return z, (rng.random(n) < _sigmoid(logit)).astype(float)


def test_isotonic_tail_follows_a_flat_default_history_where_platt_does_not():
    """Where the data show no lower risk among the best rows, the tail stays near their rate
    (no PD the defaults do not support); a logistic line extrapolates below it (Jeffreys red)."""
    raw, y = _flat_low_tail(20_000, 1)
    raw_test, y_test = _flat_low_tail(200_000, 2)
    best = raw_test <= np.quantile(raw_test, 0.1)
    defaults, n = int(y_test[best].sum()), int(best.sum())

    isotonic = PDCalibrator(method="isotonic").fit(raw, y).predict(raw_test)[best].mean()
    platt = PDCalibrator(method="platt").fit(raw, y).predict(raw_test)[best].mean()

    assert jeffreys_test(defaults, n, isotonic).light == "green"
    assert isotonic > 0.6 * defaults / n
    assert jeffreys_test(defaults, n, platt).light == "red"


def test_monotone_log_odds_keep_a_least_slope_and_tails_no_steeper_than_platt(held_out):
    raw, y = held_out
    knots_x, knots_y = fit_isotonic_knots(raw, y)
    spline = fit_monotone_log_odds(raw, y, knots_x, knots_y)
    platt = fit_platt(raw, y)[0]
    slopes = np.diff(spline["values"]) / np.diff(spline["knots"])
    assert np.all(slopes >= MIN_SLOPE_SHARE * platt * (1 - 1e-9))
    assert np.all(spline["tails"] <= platt * (1 + 1e-9))
    assert np.all(spline["tails"] >= MIN_SLOPE_SHARE * platt * (1 - 1e-9))


def test_pooled_blocks_hold_the_minimum_events_and_stay_monotone():
    raw, y = _steep_low_tail(5000, 0)
    for min_events in (5, 20):
        knots_x, knots_y = fit_isotonic_knots(raw, y, min_events)
        assert np.all(np.diff(knots_x) > 0) and np.all(np.diff(knots_y) >= 0)
        assert 2 <= knots_x.size <= y.sum() // min_events
    # by hand: blocks (weight, defaults) pool until 2 defaults and 2 non-defaults, remainder joins
    weight = np.array([3.0, 1.0, 2.0, 4.0, 1.0])
    events = np.array([0.0, 1.0, 1.0, 2.0, 1.0])
    np.testing.assert_array_equal(_pool_blocks(weight, events, 2), [0, 0, 0, 1, 1])


def test_small_samples_keep_several_blocks():
    """40 defaults cannot fill five blocks of 20: the minimum drops to 40 / 5 = 8 per block."""
    raw, y = _steep_low_tail(1200, 9)
    assert y.sum() == 40
    knots_x, _ = fit_isotonic_knots(raw, y)
    assert 3 <= knots_x.size <= 5  # 20 per block would leave at most 2
