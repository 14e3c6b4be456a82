"""Event features by hand: the 12-month window edges, days since, severity weights."""

from __future__ import annotations

import math

import pandas as pd

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
