"""`CreditScorer.score_row`: one raw row without pandas gives what `score_frame` gives it."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from features.snapshots import build_snapshots
from features.synthetic import generate_book
from models.scorer import RowScore
from models.training import train_from_snapshots, train_model

pytestmark = pytest.mark.xdist_group("models-score-row")

NAN = float("nan")


def lightgbm_champion(result):
    """The trained scorer with LightGBM alone as its champion (whatever was chosen)."""
    scorer = result.scorer
    scorer.booster_model = result.lgbm_model.booster_.model_to_string()
    scorer.scorecard = result.scorecard_model
    scorer.lightgbm_weight, scorer._runtime = 1.0, None
    return scorer


@pytest.fixture(scope="module")
def book():
    """A scorer trained on snapshots of the synthetic book (catalog rules) and 300 customers of
    another date: every segment, retail ones without statements, some values taken away, some
    segments unknown or missing, industries it never saw."""
    tables = generate_book(n_customers=1500, months=36, seed=3)
    snapshots = build_snapshots(tables, ["2021-03-01", "2021-09-01", "2022-01-01"])
    scorer = lightgbm_champion(train_from_snapshots(snapshots, n_estimators=40))
    rows = build_snapshots(tables, ["2022-06-01"]).sample(300, random_state=0)
    rows = rows.reset_index(drop=True)
    rng = np.random.default_rng(1)
    for column in scorer.preparer.categories_:
        rows[column] = rows[column].astype(object)
    numeric = [c for c in scorer.input_columns if c not in scorer.preparer.categories_]
    for column in numeric:
        rows.loc[rng.random(len(rows)) < 0.08, column] = NAN
    for source in {*scorer.reason_rules.sources.values()}:  # records a customer lacks whole
        members = [
            c for c, s in scorer.reason_rules.sources.items() if s == source and c in numeric
        ]
        rows.loc[rng.random(len(rows)) < 0.1, members] = NAN
    rows.loc[rng.random(len(rows)) < 0.05, "segment"] = None
    rows.loc[rng.random(len(rows)) < 0.03, "segment"] = "household"
    rows.loc[rng.random(len(rows)) < 0.05, "industry"] = "mining"
    rows.loc[rng.random(len(rows)) < 0.05, "region"] = None
    assert set(rows["segment"].dropna()) >= {"retail", "sme", "corporate"}
    return scorer, rows


def flat_frame(n: int = 2500, seed: int = 0) -> pd.DataFrame:
    """A flat table with sentinel codes (-1/-2 and 98), missing values and a text column."""
    rng = np.random.default_rng(seed)
    dpd = rng.poisson(1.0, n) * 10.0
    util = rng.uniform(0, 1.2, n)
    since = rng.integers(0, 60, n).astype(float)
    since[rng.random(n) < 0.15] = -1.0
    since[rng.random(n) < 0.05] = -2.0
    since[rng.random(n) < 0.05] = np.nan
    inquiries = rng.poisson(2.0, n).astype(float)
    inquiries[rng.random(n) < 0.03] = 98.0
    income = rng.lognormal(10, 0.5, n)
    income[rng.random(n) < 0.1] = np.nan
    sector = rng.choice(["retail", "sme", "corporate"], n)
    logit = (
        -3.0
        + 0.05 * dpd
        + 1.5 * util
        + 0.5 * (sector == "sme")
        + 2.0 * (since == -1)
        - 1.5 * (since == -2)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "as_of": pd.date_range("2020-01-01", periods=6, freq="QS")[rng.integers(0, 6, n)],
            "dpd": dpd,
            "util": util,
            "months_since_delinquency": since,
            "inquiries": inquiries,
            "income": income,
            "sector": sector,
            "default": y,
        }
    )


@pytest.fixture(scope="module")
def flat():
    """A scorer on a flat table (sentinel codes with their special columns, no rules) and 300
    rows of it, some sectors unseen or missing."""
    frame = flat_frame()
    result = train_model(frame, "default", "customer_id", "as_of", n_estimators=30)
    scorer = lightgbm_champion(result)
    assert scorer.preparer.specials_ and "sector" in scorer.preparer.categories_
    booster = scorer._build()["booster"]
    used = dict(zip(booster.feature_name(), booster.feature_importance(), strict=True))
    assert used["months_since_delinquency_special"] > 0  # the codes' column drives scores
    rows = flat_frame(300, seed=5).drop(columns="default")
    rows.loc[::13, "sector"] = "public"
    rows.loc[5::17, "sector"] = None
    return scorer, rows


def row_values(scorer, rows: pd.DataFrame) -> list[dict]:
    """Each row as `score_row` takes it: floats (NaN missing), category text or None."""
    categorical = scorer.preparer.categories_
    out = []
    for record in rows.to_dict("records"):
        out.append(
            {
                c: (None if pd.isna(record[c]) else str(record[c]))
                if c in categorical
                else float(record[c])
                for c in scorer.input_columns
            }
        )
    return out


def assert_same(got: RowScore, want: pd.Series, where) -> None:
    assert math.isclose(got.pd, float(want["pd"]), rel_tol=1e-12, abs_tol=0), where
    assert (got.score, got.grade) == (int(want["score"]), str(want["grade"])), where
    assert got.reasons == json.loads(want["reasons"]), where


@pytest.mark.parametrize("world", ["book", "flat"])
def test_score_row_equals_score_frame_row_by_row(world, request):
    scorer, rows = request.getfixturevalue(world)
    assert scorer._row_plan() is not None  # the row kernels, not the frame fallback
    values = row_values(scorer, rows)
    batch = scorer.score_frame(pd.DataFrame(values))
    assert batch["reasons"].map(json.loads).map(len).gt(0).any()
    for i, one in enumerate(values):
        got = scorer.score_row(one)
        assert isinstance(got, RowScore) and type(got.pd) is float and type(got.score) is int
        assert_same(got, batch.iloc[i], i)
    for i in range(0, len(values), 25):  # the one-row frame gives the same as the batch
        assert_same(
            scorer.score_row(values[i]), scorer.score_frame(pd.DataFrame([values[i]])).iloc[0], i
        )


def test_reasons_of_a_row_take_no_frame(book, monkeypatch):
    """The one-row reasons (placed by the catalog's rules, ranked in plain Python) answer every
    row of the book themselves: none falls back to a one-row frame."""
    scorer, rows = book
    assert scorer._build()["explainer"].missing_ is not None  # the catalog's rules apply
    fallbacks = []
    monkeypatch.setattr(scorer, "_row_by_frame", lambda values: fallbacks.append(values))
    for one in row_values(scorer, rows):
        scorer.score_row(one)
    assert fallbacks == []


def test_absent_names_are_missing_values_and_extra_names_ignored(book, flat):
    for scorer, rows in (book, flat):
        categorical = scorer.preparer.categories_
        for i, one in enumerate(row_values(scorer, rows)[:40]):
            dropped = scorer.input_columns[i % 7 :: 5]
            given = {c: v for c, v in one.items() if c not in dropped} | {"unused": 1.0}
            as_missing = {c: (None if c in categorical else NAN) if c in dropped else v
                          for c, v in one.items()}  # fmt: skip
            got = scorer.score_row(given)
            assert got == scorer.score_row(as_missing), i
            assert_same(got, scorer.score_frame(pd.DataFrame([as_missing])).iloc[0], i)


def test_a_scorecard_blend_scores_the_row_by_the_frame(flat):
    scorer, rows = flat
    blend = type(scorer).__new__(type(scorer))
    blend.__dict__.update(scorer.__getstate__())
    blend.lightgbm_weight = 0.5
    values = row_values(blend, rows)[:20]
    batch = blend.score_frame(pd.DataFrame(values))
    for i, one in enumerate(values):
        assert_same(blend.score_row(one), batch.iloc[i], i)


def test_one_row_placement_is_apply_of_the_row(book):
    """The rules placed for one row (`place_row`, plain floats) are the frame's placement, bit
    for bit."""
    scorer, _ = book
    rules = scorer._build()["explainer"].missing_
    names, n = rules.feature_names, 400
    rng = np.random.default_rng(2)
    free = rng.random((n, len(names))) < 0.1
    for cols in rules.members.values():
        free[np.ix_(rng.random(n) < 0.3, cols)] = True
    free[:, rules.silent] |= rng.random((n, len(rules.silent))) < 0.5
    X = pd.DataFrame(np.where(free, NAN, 1.0), columns=names)
    segment = rng.choice(np.array(["retail", "sme", "corporate", None], dtype=object), n)
    X[rules.rules.segment] = pd.Categorical(segment, categories=["corporate", "retail", "sme"])
    free[:, rules.segment_col] = pd.isna(segment)
    contrib = rng.normal(size=(n, len(names)))
    want = rules.apply(contrib, X)
    for i in range(n):
        got = rules.place_row(contrib[i].tolist(), free[i].tolist(), segment[i])
        assert got == want[i].tolist(), i
