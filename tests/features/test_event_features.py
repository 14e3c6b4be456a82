"""Event features by hand: the 12-month window edges, days since, severity weights."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.events import event_features

AS_OF = pd.Timestamp("2023-06-01")
EVENTS = pd.DataFrame(
    [
        ("E", "2022-06-01", "lawsuit", 2),  # first day of the window: counts
        ("E", "2023-01-10", "enforcement", 3),
        ("E", "2022-05-31", "complaint", 1),  # a day before the window
        ("E", "2023-06-01", "negative_news", 3),  # on the as-of date: not yet known
        ("E", "2023-05-31", "restructuring", 2),
        ("G", "2023-07-01", "lawsuit", 3),  # later: not known
    ],
    columns=["customer_id", "occurred_on", "type", "severity"],
).assign(occurred_on=lambda d: pd.to_datetime(d["occurred_on"]))


def build() -> pd.DataFrame:
    ids = pd.Series(["E", "F", "G"])
    out = event_features(EVENTS, ids, AS_OF)
    out.index = ids
    return out


def test_counts_over_the_last_12_months():
    e = build().loc["E"]
    assert e["lawsuits_12m"] == 2  # lawsuit + enforcement
    assert e["complaints_12m"] == 0
    assert e["negative_news_12m"] == 0
    assert e["restructurings_12m"] == 1
    assert e["event_severity_12m"] == 2 + 3 + 2


def test_days_since_the_last_event_of_each_kind():
    e = build().loc["E"]
    assert e["days_since_lawsuit"] == (AS_OF - pd.Timestamp("2023-01-10")).days
    assert e["days_since_complaint"] == 366  # older than the window still counts here
    assert math.isnan(e["days_since_negative_news"])


def test_customers_without_known_events_have_zero_counts_and_no_days_since():
    out = build()
    for customer in ("F", "G"):
        row = out.loc[customer]
        assert row.filter(like="_12m").eq(0).all()
        assert row.filter(like="days_since").isna().all()


def _counts_with_numpy(kind, occurred, severity, code, n, as_of):
    """The event features as numpy on whole arrays: the reference the compiled pass must
    reproduce bit for bit."""
    from features.events import DAYS_SINCE, KINDS, WINDOW_MONTHS

    recent = occurred >= np.datetime64(as_of - pd.DateOffset(months=WINDOW_MONTHS))
    days_ago = (np.datetime64(as_of) - occurred) / np.timedelta64(1, "D")
    of_kind = {name: np.isin(kind, types) for name, types in KINDS.items()}
    out = {}
    for name, rows in of_kind.items():
        out[f"{name}_12m"] = np.bincount(code[rows & recent], minlength=n).astype(float)
    out["event_severity_12m"] = np.bincount(code[recent], weights=severity[recent], minlength=n)
    for name, kind_name in DAYS_SINCE.items():
        rows = of_kind[kind_name]
        since = np.full(n, np.inf)
        np.minimum.at(since, code[rows], days_ago[rows])
        out[f"days_since_{name}"] = np.where(np.isinf(since), np.nan, since)
    return out


@pytest.mark.parametrize("unit", ["ns", "us"])
def test_compiled_pass_is_the_numpy_count(unit):
    """Random events of 500 customers (types no feature counts, times of day, the window's
    first day, severities with decimals): every feature, name and order as numpy gives them."""
    from features.events import event_counts

    rng = np.random.default_rng(5)
    m, n, as_of = 4000, 500, pd.Timestamp("2024-03-01")
    types = np.array(["lawsuit", "enforcement", "complaint", "negative_news", "restructuring",
                      "audit_qualified", "other"])  # fmt: skip
    kind = types[rng.integers(0, len(types), m)]
    occurred = (np.datetime64("2021-01-01", "ns")
                + rng.integers(0, 3 * 365 * 86_400, m).astype("timedelta64[s]"))  # fmt: skip
    occurred[::50] = np.datetime64("2023-03-01", "ns")  # the window's first day
    occurred = occurred.astype(f"datetime64[{unit}]")
    severity = rng.uniform(0.5, 3.0, m).round(3)
    code = rng.integers(0, n - 20, m)  # the last 20 customers have none
    got = event_counts(kind, occurred, severity, code, n, as_of)
    want = _counts_with_numpy(kind, occurred.astype("datetime64[ns]"), severity, code, n, as_of)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)
    assert np.isnan(got["days_since_lawsuit"][-20:]).all()
