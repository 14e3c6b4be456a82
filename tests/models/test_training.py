"""train_model / train_from_snapshots: splits, determinism, scorer consistency, catalog rules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.catalog import CATALOG, reason_text
from models.lgbm import CV_FOLDS
from models.scaling import score_from_pd
from models.training import train_from_snapshots, train_model

pytestmark = pytest.mark.xdist_group("models-training")

ROUNDS = 40


def credit_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A small flat credit table: 8 quarterly as-of dates, a text column, a 98 sentinel code."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2020-01-01", periods=8, freq="QS")
    dpd = rng.poisson(1.0, n) * 10.0
    util = rng.uniform(0, 1.2, n)
    income = rng.lognormal(10, 0.5, n)
    income[rng.random(n) < 0.1] = np.nan
    segment = rng.choice(["retail", "sme", "corporate"], n)
    late = rng.poisson(0.3, n).astype(float)
    logit = (
        -3.0
        + 0.05 * dpd
        + 1.5 * util
        - 0.5 * np.nan_to_num(np.log(income) - 10)
        + 0.5 * (segment == "sme")
        + 0.6 * late
    )
    late[rng.random(n) < 0.02] = 98.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "as_of": dates[rng.integers(0, 8, n)],
            "dpd": dpd,
            "util": util,
            "income": income,
            "segment": segment,
            "late": late,
            "noise": rng.normal(size=n),
            "default": y,
        }
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return credit_frame()


@pytest.fixture(scope="module")
def result(frame):
    return train_model(frame, "default", "customer_id", "as_of", n_estimators=ROUNDS)


def test_same_data_and_seed_give_same_metrics_and_predictions(frame, result):
    again = train_model(frame, "default", "customer_id", "as_of", n_estimators=ROUNDS)
    assert again.metrics == result.metrics
    np.testing.assert_array_equal(again.champion.pd, result.champion.pd)
    np.testing.assert_array_equal(again.challenger.pd, result.challenger.pd)
    features = frame.drop(columns="default").head(200)
    pd.testing.assert_frame_equal(
        again.scorer.score_frame(features), result.scorer.score_frame(features)
    )


def test_out_of_time_split_tests_on_the_latest_dates(frame, result):
    summary = result.data_summary.set_index("part")
    assert summary.loc["train", "to"] < summary.loc["valid", "from"]
    assert summary.loc["calib", "to"] < summary.loc["test", "from"]
    latest = frame["as_of"].max()
    assert result.test_frame["as_of"].max() == latest
    assert result.test_frame["as_of"].min() > pd.Timestamp(summary.loc["valid", "to"])
    assert len(result.test_frame) == len(result.y_test) == summary.loc["test", "rows"]
    assert result.params["split"] == "out_of_time"


def test_scorer_reproduces_the_validated_test_pds(result):
    scored = result.scorer.score_frame(result.test_frame.drop(columns="default"))
    np.testing.assert_allclose(scored["pd"], result.champion.pd, rtol=0, atol=1e-12)
    assert (scored["pd"] >= 0.0003).all()
    np.testing.assert_array_equal(scored["score"], score_from_pd(scored["pd"]))
    np.testing.assert_array_equal(
        scored["grade"], result.scorer.master_scale.grade_of(scored["pd"].to_numpy())
    )
    assert list(scored["customer_id"]) == list(result.test_frame["customer_id"])


def test_validation_tables_cover_every_grade_and_count_the_test_rows(result):
    grades = result.champion.grade_table
    assert list(grades["grade"]) == result.scorer.master_scale.grades
    assert grades["n"].sum() == len(result.y_test)
    assert grades["share"].sum() == pytest.approx(1.0)
    m = result.champion.metrics
    assert m["n_test"] == len(result.y_test)
    assert m["gini"] == pytest.approx(2 * m["auc"] - 1)
    assert m["auc_lower"] <= m["auc"] <= m["auc_upper"]
    assert m["default_rate"] == pytest.approx(result.y_test.mean())
    assert 0 < m["hhi"] <= 1
    assert result.psi_verdict in {"stable", "investigate", "shift"}
    assert set(result.importance.index) == set(result.scorer.feature_names)


def test_rows_without_a_label_are_dropped(frame):
    unlabelled = frame.copy()
    unlabelled["default"] = unlabelled["default"].astype(float)
    latest = unlabelled["as_of"] == unlabelled["as_of"].max()
    unlabelled.loc[latest, "default"] = np.nan
    res = train_model(unlabelled, "default", "customer_id", "as_of", n_estimators=ROUNDS)
    assert res.params["n_dropped_unlabelled"] == int(latest.sum())
    assert sum(res.split_sizes.values()) == len(frame) - int(latest.sum())
    assert res.test_frame["as_of"].max() < frame["as_of"].max()


def test_without_time_the_split_is_stratified(frame):
    res = train_model(frame.drop(columns="as_of"), "default", "customer_id", n_estimators=ROUNDS)
    assert res.params["split"] == "stratified"
    assert len(res.y_test) == 600  # 20 % of 3000
    assert abs(res.y_test.sum() - 0.2 * frame["default"].sum()) <= 1
    assert res.params["cv_folds"] == CV_FOLDS  # LightGBM cross-fitted on the training rows
    assert len(res.params["best_iteration"].split(",")) == CV_FOLDS


def test_age_is_held_monotone_and_cannot_be_flipped(frame):
    rng = np.random.default_rng(7)
    aged = frame.drop(columns="as_of").assign(age=rng.uniform(20, 90, len(frame)), SEX="F")
    res = train_model(aged, "default", "customer_id", n_estimators=ROUNDS)
    assert res.params["age_constrained"] == "age"
    assert "SEX" in res.roles["dropped"]
    rows = aged.drop(columns="default").iloc[[0] * 30].assign(age=np.linspace(18, 100, 30))
    pd_by_age = res.scorer.score_frame(rows, reasons=False)["pd"].to_numpy()
    assert (np.diff(pd_by_age) <= 1e-12).all()  # the elderly are never scored riskier
    with pytest.raises(ValueError, match="risk may not rise with age"):
        train_model(aged, "default", "customer_id", monotone={"age": 1}, n_estimators=ROUNDS)


def test_a_non_binary_target_is_refused_with_a_hint(frame):
    bad = frame.assign(default=frame["default"].replace({1: 2}))
    with pytest.raises(ValueError, match="must be 0/1"):
        train_model(bad, "default", "customer_id", "as_of", n_estimators=ROUNDS)


def test_monotone_constraint_makes_pd_rise_with_the_feature(frame):
    res = train_model(
        frame, "default", "customer_id", "as_of", monotone={"util": 1}, n_estimators=ROUNDS
    )
    rows = []
    for i in range(20):
        row = frame.drop(columns="default").iloc[[i] * 25].copy()
        row["util"] = np.linspace(0, 1.2, 25)
        rows.append(res.scorer.score_frame(row, reasons=False)["pd"].to_numpy())
    assert all((np.diff(p) >= -1e-12).all() for p in rows)
    assert res.params["monotone_features"] == 1


def test_tuning_records_each_trial(frame):
    res = train_model(frame, "default", "customer_id", "as_of", tune_trials=2, n_estimators=ROUNDS)
    assert [t["trial"] for t in res.trials] == [0, 1]
    assert all(0.5 < t["valid_auc"] <= 1 for t in res.trials)


def snapshot_frame(n: int = 2400, seed: int = 1) -> pd.DataFrame:
    """Snapshot-shaped rows: catalog features, a non-catalog column and unmatured labels."""
    rng = np.random.default_rng(seed)
    dpd = rng.poisson(2.0, n) * 5.0
    ratio = rng.uniform(0.3, 1.0, n)
    util = rng.uniform(0, 1, n)
    logit = -3.0 + 0.06 * dpd - 2.0 * (ratio - 0.65) + 1.0 * util
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    as_of = pd.date_range("2021-01-01", periods=6, freq="QS")[rng.integers(0, 6, n)]
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "as_of": as_of,
            "days_past_due_max_12m": dpd,
            "payment_ratio_12m": ratio,
            "utilisation_latest": util,
            "segment": pd.Categorical(rng.choice(["corporate", "sme", "retail"], n)),
            "internal_note_score": rng.normal(size=n),
            "default_flag": y,
        }
    )
    frame.loc[frame["as_of"] == frame["as_of"].max(), "default_flag"] = np.nan
    return frame


def test_snapshots_use_catalog_features_constraints_and_texts(tmp_path):
    from features.io import read_snapshots, write_snapshots

    frame = snapshot_frame()
    path = write_snapshots(frame, tmp_path / "snapshots.parquet")
    res = train_from_snapshots(read_snapshots(path)[0], n_estimators=ROUNDS)
    assert "internal_note_score" not in res.scorer.input_columns
    assert set(res.scorer.input_columns) <= set(CATALOG)
    assert res.params["monotone_features"] == 3
    assert res.params["n_dropped_unlabelled"] == int(frame["default_flag"].isna().sum())
    scored = res.scorer.score_frame(frame.head(50))
    texts = {r["feature"]: r["text"] for v in scored["reasons"] for r in json.loads(v)}
    assert texts
    for feature, text in texts.items():
        assert text == reason_text(feature)


def test_the_scorecard_bins_sentinel_codes_apart_from_missing_values(frame, result):
    """The champion's matrix blanks the 98 code of `late` to NaN; the scorecard gets what a
    preparer keeping codes gives (it decides itself which codes get bins of their own)."""
    from models.prepare import TablePreparer
    from models.scorecard import scorecard_matrix

    preparer = result.scorer.preparer
    assert preparer.sentinels_ == {"late": [98.0]}
    X = preparer.transform(frame)
    assert X["late"].max() < 98
    rows = np.arange(0, len(frame), 7)
    keeping = TablePreparer(
        target="default", id="customer_id", time="as_of", sentinels_to_nan=False
    ).fit(frame)
    matrix = scorecard_matrix(preparer, X.iloc[rows])
    pd.testing.assert_frame_equal(matrix, keeping.transform(frame.iloc[rows]))
    assert (matrix["late"] == 98.0).sum() == (frame["late"].iloc[rows] == 98.0).sum() > 0
    assert "late_special" not in result.scorecard_model.variables_


def test_fully_labelled_frames_are_used_without_a_copy(frame):
    from models.training import _labelled_rows

    assert _labelled_rows(frame, "default") is frame
    partly = frame.assign(default=frame["default"].astype(float).where(frame.index % 3 > 0))
    kept = _labelled_rows(partly, "default")
    assert len(kept) == len(frame) - len(range(0, len(frame), 3))
    assert kept.index.equals(pd.RangeIndex(len(kept)))
