"""Labels: default dates, exclusion of customers already in default, horizon edges, maturity."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from features.labels import build_labels, default_dates, derived_default_dates, observed_until

AS_OF = pd.Timestamp("2022-01-01")


def book(dpd: dict[str, dict[str, int]], months: int = 36) -> dict[str, pd.DataFrame]:
    """Customers with monthly rows 2021-01 .. (36 months by default), dpd 0 unless given."""
    ids = sorted(dpd)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "segment": "sme",
            "industry": "energy",
            "region": "north",
            "onboarded_on": pd.Timestamp("2020-01-01"),
            "founded_on": pd.NaT,
        }
    )
    calendar = pd.date_range("2021-01-01", periods=months, freq="MS")
    rows = [
        (c, m, dpd[c].get(f"{m:%Y-%m}", 0)) for c in ids for m in calendar
    ]  # fmt: skip
    repayments = pd.DataFrame(rows, columns=["customer_id", "month", "days_past_due"]).assign(
        credit_limit=1000.0, balance=100.0, amount_due=10.0, amount_paid=10.0
    )
    return {"customers": customers, "repayments": repayments}


def labels(tables, as_of=AS_OF, horizon=12) -> pd.Series:
    return build_labels(tables, as_of, horizon).set_index("customer_id")["default_flag"]


def test_derived_default_date_is_the_close_of_the_first_90dpd_month():
    tables = book({"A": {"2022-03": 95, "2022-04": 120}, "B": {"2022-03": 89}})
    dates = derived_default_dates(tables["repayments"])
    assert dates.to_dict() == {"A": pd.Timestamp("2022-04-01")}
    assert observed_until(tables) == pd.Timestamp("2024-01-01")


def test_defaults_table_takes_precedence_and_first_default_counts():
    tables = book({"A": {"2022-03": 95}, "B": {}})
    tables["defaults"] = pd.DataFrame(
        {
            "customer_id": ["B", "B"],
            "defaulted_on": pd.to_datetime(["2022-09-15", "2022-05-01"]),
            "reason": ["bankruptcy", "90dpd"],
        }
    )
    assert default_dates(tables).to_dict() == {"B": pd.Timestamp("2022-05-01")}
    assert labels(tables).to_dict() == {"A": 0.0, "B": 1.0}


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        ("2021-12", None),  # closes on as_of: already in default, excluded
        ("2021-11", None),
        ("2022-01", 1.0),  # closes 2022-02-01, just after as_of
        ("2022-12", 1.0),  # closes 2023-01-01 = as_of + 12 months: last day in the horizon
        ("2023-01", 0.0),  # closes 2023-02-01: after the horizon
    ],
)
def test_horizon_edges(month, expected):
    got = labels(book({"A": {month: 90}, "B": {}}))
    if expected is None:
        assert "A" not in got.index
    else:
        assert got["A"] == expected
    assert got["B"] == 0.0


def test_defaults_table_edges_use_the_same_rule():
    tables = book({"A": {}, "B": {}, "C": {}})
    tables["defaults"] = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "defaulted_on": pd.to_datetime(["2022-01-01", "2022-01-02", "2023-01-02"]),
            "reason": "bankruptcy",
        }
    )
    assert labels(tables).to_dict() == {"B": 1.0, "C": 0.0}


def test_label_is_nan_when_the_horizon_is_not_observed():
    tables = book({"A": {"2022-06": 90}, "B": {}}, months=24)  # observed until 2023-01-01
    assert labels(tables, pd.Timestamp("2022-01-01")).to_dict() == {"A": 1.0, "B": 0.0}
    late = labels(tables, pd.Timestamp("2022-01-02"))
    assert late.isna().all() and len(late) == 2
    assert math.isnan(labels(tables, AS_OF, horizon=13)["A"])
    assert labels(tables, AS_OF, horizon=6)["A"] == 1.0


def test_customers_onboarded_on_or_after_as_of_are_not_in_the_population():
    tables = book({"A": {}, "B": {}})
    tables["customers"].loc[1, "onboarded_on"] = AS_OF
    assert list(labels(tables).index) == ["A"]
