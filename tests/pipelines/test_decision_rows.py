"""One customer's policy and warning rows (`decide_row`, `warning_row`) equal the batch's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.synthetic import generate_book
from models.master_scale import MasterScale
from pipelines.decisions.early_warning import evaluate_signals, load_rules, roll_up, warning_row
from pipelines.decisions.policy import decide, decide_row, load_policy
from pipelines.usecases.scoring import policy_inputs

AS_OF = pd.Timestamp("2023-01-01")


@pytest.fixture(scope="module")
def scored() -> pd.DataFrame:
    """Real features with PDs spread over the scale (some jumping), grades from the scale."""
    book = generate_book(n_customers=600, months=30, seed=11)
    features = build_features(book, AS_OF)
    rng = np.random.default_rng(3)
    p = np.exp(rng.uniform(np.log(0.0005), np.log(0.6), len(features)))
    frame = features.assign(pd=p, grade=MasterScale.load().grade_of(p).astype(str))
    # edge values: negative and missing limit inputs, a zero revenue, extreme utilisation
    frame.loc[0, "revenue_latest"] = -5.0
    frame.loc[1, "credit_limit_latest"] = np.nan
    frame.loc[2, "revenue_latest"] = 0.0
    frame.loc[3:40, "utilisation_latest"] = 0.95
    return frame


@pytest.fixture(scope="module")
def history(scored) -> pd.DataFrame:
    """Earlier runs of most customers (some on the current date, which must not count)."""
    rng = np.random.default_rng(5)
    scale = MasterScale.load()
    rows = []
    for i, cid in enumerate(scored["customer_id"]):
        for months in rng.choice([0, 1, 2, 3, 5, 6, 7, 9], size=i % 4, replace=False):
            when = AS_OF - pd.DateOffset(months=int(months))
            p = float(scored["pd"].iloc[i] * rng.uniform(0.05, 1.5))
            p = 0.0 if i % 97 == 0 else p  # a previous PD of 0 gives an infinite relative rise
            rows.append((cid, when, p, str(scale.grade_of([p])[0])))
    return pd.DataFrame(rows, columns=["customer_id", "as_of", "pd", "grade"]).sort_values(
        ["customer_id", "as_of"], ignore_index=True
    )


def test_policy_rows_equal_the_batch(scored):
    policy = load_policy()
    batch = decide(scored, policy).assign(inputs=policy_inputs(scored))
    assert batch["binding_rule"].nunique() > 1
    for i, row in enumerate(scored.to_dict("records")):
        one = decide_row(row, policy)
        want = batch.iloc[i].to_dict()
        assert one == {k: want[k] for k in one}, i


def test_warning_rows_equal_the_batch(scored, history):
    rules, scale = load_rules(), MasterScale.load()
    signals = evaluate_signals(scored, history, rules, scale)
    batch = roll_up(signals, rules, population=scored).set_index("customer_id")
    assert set(signals["signal"]) >= {"pd_jump", "downgrade", "utilisation_high"}
    assert (batch["level"] == "red").any() and (batch["n_signals"] >= 2).any()
    by_customer = {cid: rows for cid, rows in history.groupby("customer_id")}
    for row in scored.to_dict("records"):
        cid = row["customer_id"]
        own = by_customer.get(cid)
        runs = [] if own is None else list(own[["as_of", "pd", "grade"]].itertuples(index=False))
        one = warning_row(row, [tuple(r) for r in runs], rules, scale)
        want = batch.loc[cid].to_dict()
        assert {k: one[k] for k in want} == want, cid


def test_one_value_compares_as_the_batch_at_the_edges():
    """`warning_row`'s comparison of one value equals the batch's on missing, infinite, tied
    (within the tolerance) and huge values, for every operator."""
    from pipelines.decisions.early_warning import _COMPARISONS, _compare, _compare_one

    edges = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-10, 1.0, -1.0, 30, 30 + 1e-8, 30.1, 1e300]
    for op in _COMPARISONS:
        for x in edges:
            for y in edges:
                want = bool(_compare(np.array([float(x)]), op, y)[0])
                assert _compare_one(float(x), op, y) == want, (op, x, y)
