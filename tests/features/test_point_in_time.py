"""Property: appending any rows dated after the as-of date changes no feature of its snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import build_features
from features.synthetic import generate_book

AS_OF_DATES = ("2022-03-01", "2022-07-01", "2022-07-15", "2023-01-01")


@pytest.fixture(scope="module")
def book() -> dict[str, pd.DataFrame]:
    return generate_book(80, months=36, start="2021-01-01", seed=11)


def known_and_later(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp):
    """Split each dated table into rows known at ``as_of`` and rows dated after it."""
    later_mask = {
        "repayments": tables["repayments"]["month"] + pd.DateOffset(months=1) > as_of,
        "financial_statements": tables["financial_statements"]["published_on"] >= as_of,
        "events": tables["events"]["occurred_on"] >= as_of,
        "defaults": tables["defaults"]["defaulted_on"] > as_of,
    }
    known = {"customers": tables["customers"]}
    later = {}
    for name, mask in later_mask.items():
        known[name] = tables[name][~mask.to_numpy()].reset_index(drop=True)
        later[name] = tables[name][mask.to_numpy()].reset_index(drop=True)
    return known, later


def perturb(later: dict[str, pd.DataFrame], seed: int, share: float) -> dict[str, pd.DataFrame]:
    """A random subset of the later rows with arbitrary values (extreme delinquency, losses)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, df in later.items():
        df = df[rng.random(len(df)) < share].copy()
        if name == "repayments":
            df["days_past_due"] = rng.integers(0, 400, len(df)).astype(df["days_past_due"].dtype)
            df["balance"] = (df["balance"] * rng.uniform(0, 5, len(df))).astype(df["balance"].dtype)
        elif name == "financial_statements":
            for column in ("revenue", "ebit", "net_income", "total_assets"):
                df[column] = rng.normal(0, 1e6, len(df)).astype(df[column].dtype)
        elif name == "events":
            df["severity"] = rng.integers(1, 4, len(df)).astype(df["severity"].dtype)
        out[name] = df
    return out


def later_rows(customers: pd.Series, as_of: pd.Timestamp, draws: list[tuple]) -> dict:
    """Rows built by hypothesis: each dated on or after as_of, for existing customers."""
    month0 = as_of.to_period("M").to_timestamp()  # not closed by as_of
    reps, stmts, events, defaults = [], [], [], []
    for who, offset, dpd, amount, kind in draws:
        customer = customers.iloc[who % len(customers)]
        day = as_of + pd.Timedelta(days=offset)
        reps.append((customer, month0 + pd.DateOffset(months=offset % 40), dpd, amount))
        period_end = (as_of - pd.DateOffset(months=3 * (offset % 5))).to_period("Q").end_time
        stmts.append((customer, period_end.normalize(), day, amount))
        events.append((customer, day, kind, 1 + offset % 3))
        defaults.append((customer, day + pd.Timedelta(days=1)))
    rep = pd.DataFrame(reps, columns=["customer_id", "month", "days_past_due", "balance"])
    rep = rep.assign(credit_limit=1000.0, amount_due=50.0, amount_paid=0.0)
    stm = pd.DataFrame(stmts, columns=["customer_id", "period_end", "published_on", "revenue"])
    stm = stm.assign(ebit=-1.0, interest_expense=0.0, net_income=-5.0, total_assets=1.0)
    stm = stm.assign(total_liabilities=9.0, current_assets=1.0, current_liabilities=0.0)
    stm = stm.assign(cash=0.0, equity=-8.0, inventory=0.0)
    ev = pd.DataFrame(events, columns=["customer_id", "occurred_on", "type", "severity"])
    de = pd.DataFrame(defaults, columns=["customer_id", "defaulted_on"]).assign(reason="90dpd")
    return {"repayments": rep, "financial_statements": stm, "events": ev, "defaults": de}


KEYS = {
    "repayments": ["customer_id", "month"],
    "financial_statements": ["customer_id", "period_end", "published_on"],  # later: restated
}


def append(known: dict, *extra: dict) -> dict[str, pd.DataFrame]:
    out = dict(known)
    for more in extra:
        for name, df in more.items():
            merged = pd.concat(
                [out[name], df.astype(out[name].dtypes.to_dict())], ignore_index=True
            )
            if name in KEYS:  # keep the table's keys unique: the first (known) row wins
                merged = merged.drop_duplicates(KEYS[name], keep="first")
            out[name] = merged.reset_index(drop=True)
    return out


draw = st.tuples(
    st.integers(0, 10_000),
    st.integers(0, 800),
    st.integers(0, 400),
    st.floats(0, 1e7, allow_nan=False),
    st.sampled_from(["lawsuit", "enforcement", "complaint", "negative_news", "restructuring"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    as_of=st.sampled_from(AS_OF_DATES),
    seed=st.integers(0, 2**32 - 1),
    share=st.floats(0, 1),
    draws=st.lists(draw, max_size=12),
    with_defaults_table=st.booleans(),
)
def test_appending_later_rows_changes_no_feature(
    book, as_of, seed, share, draws, with_defaults_table
):
    as_of = pd.Timestamp(as_of)
    known, later = known_and_later(book, as_of)
    grown = append(
        known,
        perturb(later, seed, share),
        later_rows(book["customers"]["customer_id"], as_of, draws),
    )
    if not with_defaults_table:
        known, grown = dict(known), dict(grown)
        del known["defaults"], grown["defaults"]
    before = build_features(known, as_of)
    after = build_features(grown, as_of)
    pd.testing.assert_frame_equal(before, after)


def test_the_split_is_not_trivial(book):
    _, later = known_and_later(book, pd.Timestamp("2022-07-01"))
    assert all(len(df) > 0 for df in later.values())
    late_filed = later["financial_statements"]
    assert (late_filed["period_end"] < pd.Timestamp("2022-07-01")).any()
