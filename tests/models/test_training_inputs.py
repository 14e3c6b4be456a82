"""What training refuses, and what it leaves out, before a model is fitted: the 0/1 target, class
counts, role columns, dates, probable leaks, wide tables; and the small rules shared by the models
(0/1 labels, sigmoid, PD floor, Hosmer-Lemeshow on degenerate PDs)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import training
from models.calibration import PD_FLOOR, PDCalibrator, floor_pd, sigmoid
from models.lgbm import LGBMPDClassifier
from models.master_scale import MasterScale
from models.prepare import (
    TrainingInputError,
    binary_target,
    check_dates,
    probable_leaks,
    single_feature_auc,
)
from models.scorecard import WOEScorecard
from models.split import check_classes, check_parts, make_split
from models.training import evaluate, train_model
from models.validation import auc, binary_labels, brier_score
from pipelines.errors import CreditriskError, as_typed

pytestmark = pytest.mark.xdist_group("models-training")

ROUNDS = 30


def small_frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """A small credit table with signal in two columns, a text column and a noise column."""
    rng = np.random.default_rng(seed)
    util = rng.uniform(0, 1.2, n)
    dpd = rng.poisson(1.0, n) * 10.0
    y = (rng.random(n) < sigmoid(-2.5 + 2.0 * util + 0.05 * dpd)).astype(int)
    return pd.DataFrame(
        {
            "loan_id": [f"L{i:05d}" for i in range(n)],
            "util": util,
            "dpd": dpd,
            "segment": rng.choice(["retail", "sme"], n),
            "noise": rng.normal(size=n),
            "default": y,
        }
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return small_frame()


# The 0/1 target


@pytest.mark.parametrize(
    "values",
    [[0, 1, 1, 0], [0.0, 1.0, 1.0, 0.0], [False, True, True, False], ["0", "1", "1", "0"]],
)
def test_binary_target_accepts_0_1_booleans_and_floats(values):
    np.testing.assert_array_equal(binary_target(pd.Series(values), "y"), [0.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (["yes", "no", "no"], "'no' (2 rows), 'yes' (1 rows)"),
        ([1, 2, 2, 1], "1 (2 rows), 2 (2 rows)"),
        ([0, 1, 2, 0], "0 (2 rows), 1 (1 rows), 2 (1 rows)"),
        ([f"note {i}" for i in range(9)], "and 3 more distinct values"),
    ],
)
def test_other_targets_are_refused_naming_the_values_found(values, named):
    with pytest.raises(TrainingInputError, match="must be 0/1") as caught:
        binary_target(pd.Series(values), "bad")
    assert named in caught.value.reason
    assert caught.value.field == "bad" and "recode" in caught.value.hint


def test_the_0_1_rule_is_one_rule_for_every_model_and_metric():
    """Estimators, the calibrator and the metrics refuse other labels with the same words."""
    X = pd.DataFrame({"x": np.linspace(0, 1, 40)})
    y = np.tile([0.0, 1.0, 2.0, 0.0], 10)
    messages = set()
    for fit in (
        lambda: LGBMPDClassifier(n_estimators=2).fit(X, y),
        lambda: WOEScorecard().fit(X, y),
        lambda: PDCalibrator().fit(X["x"], y),
        lambda: brier_score(y, X["x"]),
        lambda: binary_labels(y),
    ):
        with pytest.raises(ValueError) as caught:
            fit()
        messages.add(str(caught.value))
    assert messages == {"labels must be 0/1 (1 = default, as default_flag); got other values"}


# Class counts, rows, dates and role columns


@pytest.mark.parametrize(("defaults", "rows"), [(0, 400), (1, 400), (399, 400), (0, 1)])
def test_too_few_defaults_or_non_defaults_are_refused_with_the_counts(defaults, rows):
    y = np.r_[np.ones(defaults), np.zeros(rows - defaults)]
    with pytest.raises(TrainingInputError) as caught:
        check_classes(y)
    reason = caught.value.reason
    assert f"{defaults:,} defaults" in reason and f"{rows - defaults:,} non-defaults" in reason
    assert "at least 10 of each" in reason


def test_an_empty_or_unlabelled_table_is_refused(frame):
    with pytest.raises(TrainingInputError, match="no rows"):
        train_model(frame.head(0), "default")
    unlabelled = frame.assign(default=np.nan)
    with pytest.raises(TrainingInputError, match="no row has a target") as caught:
        train_model(unlabelled, "default")
    assert f"all {len(frame):,} are missing" in caught.value.reason


@pytest.mark.parametrize(
    ("options", "role"),
    [
        ({"target": "defualt"}, "target"),
        ({"time_col": "as_of"}, "time"),
        ({"id_col": "customer"}, "id"),
        ({"exclude": ("util", "gone")}, "excluded"),
    ],
)
def test_role_columns_missing_from_the_table_are_named(frame, options, role):
    options = {"target": "default", **options}
    with pytest.raises(TrainingInputError, match=f"the {role} column is not in the table") as e:
        train_model(frame, options.pop("target"), **options)
    assert e.value.field in ("defualt", "as_of", "customer", "gone")
    assert "loan_id, util" in e.value.hint
    if role == "target":
        assert "did you mean 'default'?" in e.value.hint


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (pd.Series([0.5, 1.5, 2.5]), "holds numbers, not dates (such as 0.5, 1.5, 2.5)"),
        (pd.Series(["2021-01-31", "soon", "2021-03-31"]), "1 values are not dates"),
        (pd.Series(["2021-01-31", None, "2021-03-31"]), "1 rows have no date"),
    ],
)
def test_a_time_column_that_is_not_dates_is_refused(values, reason):
    with pytest.raises(TrainingInputError, match="time column") as caught:
        check_dates(values, "when")
    assert reason in caught.value.reason and caught.value.field == "when"


def test_dates_as_text_or_datetimes_pass():
    check_dates(pd.Series(["2021-01-31", "2021-02-28"]), "when")
    check_dates(pd.Series(pd.date_range("2021-01-01", periods=3)), "when")


def test_an_out_of_time_window_without_defaults_is_refused():
    dates = np.repeat(pd.date_range("2020-01-01", periods=5, freq="QS"), 100)
    y = np.tile(np.r_[np.ones(10), np.zeros(90)], 5)
    y[-100:] = 0  # the latest date (the test window) holds no default
    split = make_split(y, time=dates)
    with pytest.raises(TrainingInputError, match=r"the test part .* has 0 defaults in 100 rows"):
        check_parts(split, y)


def test_fewer_rows_than_lightgbm_can_split_are_refused(frame):
    with pytest.raises(TrainingInputError, match="too few rows to train") as caught:
        train_model(frame.head(300), "default", n_estimators=ROUNDS)
    assert "needs 200 (two leaves of 100 rows)" in caught.value.reason


def test_a_table_with_no_usable_feature_says_why(frame):
    with pytest.raises(TrainingInputError, match="no column is usable as a feature") as caught:
        train_model(frame.assign(util=1.0, dpd=1.0, segment="x", noise=0.0), "default")
    assert "'util' constant" in caught.value.reason and "'loan_id' id" in caught.value.reason


def test_a_table_whose_columns_carry_no_information_is_refused():
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"odd": np.arange(600) % 2, "default": (rng.random(600) < 0.2)})
    with pytest.raises(TrainingInputError, match="no feature reaches the scorecard's min_iv"):
        train_model(data.astype(int), "default", n_estimators=ROUNDS)


# Probable leaks


def leaky(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a copy, a multiple, a text copy and a row counter sorted by the target."""
    order = np.argsort(frame["default"].to_numpy(), kind="stable")
    counter = np.empty(len(frame))
    counter[order] = np.arange(len(frame))
    return frame.assign(
        copy=frame["default"],
        doubled=frame["default"] * 2,
        status=np.where(frame["default"] == 1, "written off", "current"),
        row=counter,
    )


def test_copies_multiples_and_sorted_counters_of_the_target_are_probable_leaks(frame):
    from models.prepare import TablePreparer

    data = leaky(frame)
    X = TablePreparer(target="default").fit(data).transform(data)
    found = probable_leaks(X, data["default"].to_numpy(dtype=float))
    assert set(found) == {"copy", "doubled", "status", "row"}
    assert all(abs(a - 0.5) >= 0.499 for a in found.values())


def test_missing_and_infinite_values_alone_are_no_leak(frame):
    from models.prepare import TablePreparer

    data = frame.assign(ratio=np.where(np.arange(len(frame)) % 9 == 0, np.inf, frame["noise"]))
    data.loc[::7, "ratio"] = np.nan
    X = TablePreparer(target="default").fit(data).transform(data)
    assert probable_leaks(X, data["default"].to_numpy(dtype=float)) == {}


def test_a_leak_is_left_out_before_training_and_recorded(frame):
    data = frame.assign(copy=frame["default"], row=np.argsort(np.argsort(frame["default"])))
    result = train_model(data, "default", n_estimators=ROUNDS)
    assert set(result.leaks) == {"copy", "row"}
    assert result.roles["dropped"]["copy"] == "probable leak of the target"
    assert "copy (AUC 1.0000)" in result.params["leaks_dropped"]
    assert not {"copy", "row"} & set(result.scorer.input_columns)
    assert 0.6 < result.champion.metrics["auc"] < 0.99  # the real signal, not the leak


def test_a_table_of_nothing_but_leaks_is_refused(frame):
    data = frame[["loan_id", "default"]].assign(copy=frame["default"] * 3)
    with pytest.raises(TrainingInputError, match="'copy' probable leak of the target"):
        train_model(data, "default", n_estimators=ROUNDS)


def test_real_datasets_show_no_probable_leak(datasets_dir):
    """The strongest real single columns stay far from the leak threshold (0.999)."""
    from models.prepare import TablePreparer

    tables = {
        "taiwan_credit_default/UCI_Credit_Card.csv": "default.payment.next.month",
        "give_me_some_credit/cs-training.csv.gz": "SeriousDlqin2yrs",
    }
    for name, target in tables.items():
        data = pd.read_csv(datasets_dir / name)
        y = data[target].to_numpy(dtype=float)
        X = TablePreparer(target=target).fit(data).transform(data)
        strongest = (single_feature_auc(X, y) - 0.5).abs().max()
        assert 0.15 < strongest < 0.3, (name, strongest)  # PAY_0 0.694, utilisation 0.778
        assert probable_leaks(X, y) == {}


# Wide tables


def wide_frame(n_rows: int, n_columns: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_columns))
    y = (rng.random(n_rows) < sigmoid(-1.5 + X[:, 0] + 0.8 * X[:, 1])).astype(int)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(n_columns)]).assign(default=y)


def test_a_wide_table_trains_and_finds_its_signal():
    result = train_model(wide_frame(600, 120), "default", n_estimators=ROUNDS)
    assert result.params["n_features"] == 120
    assert set(result.importance.index[:2]) == {"f0", "f1"}


def test_a_table_wider_than_training_takes_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(training, "MAX_FEATURES", 50)
    with pytest.raises(TrainingInputError, match="60 feature columns, more than the 50"):
        train_model(wide_frame(600, 60), "default", n_estimators=ROUNDS)


# Shared small rules


def test_sigmoid_is_stable_at_the_extremes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0, 0.5, 1])


def test_the_pd_floor_is_the_calibrators_floor():
    np.testing.assert_array_equal(floor_pd([0.0, 1e-9, 0.2, 1.0]), [PD_FLOOR, PD_FLOOR, 0.2, 1.0])
    assert PDCalibrator().floor == PD_FLOOR


def test_hosmer_lemeshow_on_one_pd_is_not_a_crash():
    y = np.r_[np.ones(10), np.zeros(90)]
    result = evaluate("flat", y, np.full(100, 0.1), MasterScale.load(), seed=0)
    assert np.isnan(result.metrics["hosmer_lemeshow_p"])
    assert result.metrics["auc"] == auc(y, np.full(100, 0.1)) == 0.5


# Property: malformed tables give a typed error or a model, never another exception

CELLS = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["", "yes", "no", "0", "1", "2021-01-31", "x;y"]),
)


DATES = st.sampled_from(["2021-01-31", "2021-04-30", "2021-07-31", "2021-10-31", None])


@st.composite
def malformed_tables(draw):
    """Tiny tables of mixed cells, with the target and the roles named or misnamed."""
    n = draw(st.integers(0, 60))
    column = st.lists(CELLS, min_size=n, max_size=n)
    names = draw(st.lists(st.sampled_from(["a", "b", "id"]), max_size=3, unique=True))
    frame = pd.DataFrame({c: draw(column) for c in names})
    frame["when"] = draw(st.one_of(column, st.lists(DATES, min_size=n, max_size=n)))
    labels = st.lists(st.sampled_from([0, 1, None, 2, "yes", True]), min_size=n, max_size=n)
    frame["y"] = draw(st.one_of(labels, st.just([i % 2 for i in range(n)])))
    target = draw(st.sampled_from(["y", "y", "y", "missing"]))
    roles = {
        "time_col": draw(st.sampled_from([None, None, "when", "a", "nowhere"])),
        "id_col": draw(st.sampled_from([None, None, None, "id", "y"])),
    }
    return frame, target, roles


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(malformed_tables())
def test_malformed_tables_give_a_typed_error_or_a_model(table):
    frame, target, roles = table
    try:
        with as_typed():
            result = train_model(frame, target, **roles, n_estimators=5)
    except CreditriskError as exc:
        assert exc.reason and "\n" not in exc.message
    else:
        assert 0 <= result.champion.metrics["auc"] <= 1
