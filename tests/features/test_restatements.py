"""Restated statements: a statement version is (customer_id, period_end, published_on).

A restatement is accepted beside the original; a snapshot uses, for each period, the latest
version published before the as-of date (strictly before, as for every point-in-time feature), so
a restatement published on or after the as-of date changes nothing.
"""

from __future__ import annotations

import pandas as pd
import pytest

from features.catalog import CATALOG
from features.financial import financial_features
from features.schemas import validate_tables
from features.snapshots import ID, build_snapshot

FINANCIAL = [f for f, feature in CATALOG.items() if feature.family == "financial"]
KEY = "customer_id,period_end,published_on"
# (period_end, published_on, scale): amounts are a base statement times ``scale``.
ORIGINALS = [
    ("2021-09-30", "2021-11-15", 1.00),
    ("2021-12-31", "2022-03-01", 1.05),
    ("2022-09-30", "2022-11-15", 1.10),
    ("2022-12-31", "2023-03-01", 1.20),
]
RESTATED_ON = "2023-05-15"


def statement(customer: str, period_end: str, published_on: str, scale: float, **changes) -> dict:
    base = {
        "revenue": 1000.0,
        "ebit": 80.0,
        "interest_expense": 20.0,
        "net_income": 50.0,
        "total_assets": 2000.0,
        "total_liabilities": 1200.0,
        "current_assets": 600.0,
        "current_liabilities": 400.0,
        "cash": 100.0,
        "equity": 800.0,
        "inventory": 150.0,
    }
    amounts = {k: v * scale for k, v in base.items()} | changes
    return {"customer_id": customer, "period_end": period_end, "published_on": published_on} | (
        amounts
    )


# The 2022-12-31 statement restated: lower revenue and profit, more debt, less cash.
RESTATEMENT = statement(
    "C1",
    "2022-12-31",
    RESTATED_ON,
    1.20,
    revenue=900.0,
    ebit=-30.0,
    net_income=-60.0,
    total_assets=2100.0,
    total_liabilities=1900.0,
    current_assets=500.0,
    current_liabilities=700.0,
    cash=40.0,
    equity=200.0,
    inventory=260.0,
)


def raw_book(statements: list[dict]) -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "segment": ["corporate", "sme"],
            "industry": ["energy", "energy"],
            "region": ["north", "north"],
            "onboarded_on": ["2020-01-01", "2020-01-01"],
            "founded_on": ["2001-01-01", "2005-01-01"],
        }
    )
    months = pd.date_range("2021-01-01", periods=36, freq="MS").strftime("%Y-%m-%d")
    repayments = pd.DataFrame(
        [(c, m) for c in ("C1", "C2") for m in months], columns=["customer_id", "month"]
    ).assign(credit_limit=1000.0, balance=250.0, amount_due=50.0, amount_paid=50.0, days_past_due=0)
    c2 = [statement("C2", pe, pub, s * 0.5) for pe, pub, s in ORIGINALS]
    return {
        "customers": customers,
        "repayments": repayments,
        "financial_statements": pd.DataFrame(statements + c2),
    }


def originals() -> list[dict]:
    return [statement("C1", pe, pub, s) for pe, pub, s in ORIGINALS]


def accepted(statements: list[dict]) -> dict[str, pd.DataFrame]:
    result = validate_tables(raw_book(statements))
    assert result.rejects.empty, result.rejects
    return result.accepted


def financials(tables: dict[str, pd.DataFrame], as_of: str) -> pd.DataFrame:
    return build_snapshot(tables, as_of).set_index(ID)[FINANCIAL]


def test_a_restatement_is_accepted_beside_the_original():
    result = validate_tables(raw_book([*originals(), RESTATEMENT]))
    assert result.rejects.empty
    counts = result.counts.set_index("table").loc["financial_statements"]
    assert (counts["rows_in"], counts["accepted"], counts["rejected"]) == (9, 9, 0)


def test_snapshot_uses_the_restated_values_only_once_published():
    restated = accepted([*originals(), RESTATEMENT])
    as_published = accepted(originals())  # the book as it was before the restatement
    corrected = accepted([*originals()[:-1], RESTATEMENT])  # the restated version only

    before = financials(restated, "2023-04-01")
    pd.testing.assert_frame_equal(before, financials(as_published, "2023-04-01"))
    on_the_day = financials(restated, RESTATED_ON)  # published on the as-of date: not yet known
    pd.testing.assert_frame_equal(on_the_day, financials(as_published, RESTATED_ON))

    after = financials(restated, "2023-06-01")
    pd.testing.assert_frame_equal(after, financials(corrected, "2023-06-01"))
    assert after.loc["C1", "revenue_latest"] == 900.0
    assert (
        after.loc["C1", "statement_age_days"]
        == (pd.Timestamp("2023-06-01") - pd.Timestamp("2022-12-31")).days
    )
    unrestated = financials(as_published, "2023-06-01")
    changed = [f for f in FINANCIAL if after.loc["C1", f] != unrestated.loc["C1", f]]
    # the same period, restated: every financial feature but the statement's age moves
    assert sorted(changed) == sorted(set(FINANCIAL) - {"statement_age_days"})
    pd.testing.assert_series_equal(after.loc["C2"], unrestated.loc["C2"])  # others unchanged


def test_losing_the_restated_period_would_change_every_financial_feature():
    """What the issue measured: falling back to the older statement moves all 18 features."""
    after = financials(accepted([*originals(), RESTATEMENT]), "2023-06-01").loc["C1"]
    fallback = financials(accepted(originals()[:-1]), "2023-06-01").loc["C1"]
    assert len(FINANCIAL) == 18
    assert [f for f in FINANCIAL if after[f] == fallback[f]] == []


def test_a_restated_prior_year_moves_only_the_year_on_year_changes():
    prior = statement("C1", "2021-12-31", "2022-06-01", 1.05, revenue=600.0, total_liabilities=0.0)
    with_prior = financials(accepted([*originals(), prior]), "2023-04-01").loc["C1"]
    without = financials(accepted(originals()), "2023-04-01").loc["C1"]
    moved = {f for f in FINANCIAL if with_prior[f] != without[f]}
    assert moved == {
        "revenue_growth_1y",
        "leverage_change_1y",
        "ebit_margin_change_1y",
        "net_margin_change_1y",
    }
    assert with_prior["revenue_growth_1y"] == pytest.approx(1200 / 600 - 1)
    assert with_prior["leverage_change_1y"] == pytest.approx(0.6)


def test_the_latest_version_wins_whatever_the_row_order():
    second = statement("C1", "2022-12-31", "2023-05-20", 1.20, revenue=950.0)
    rows = [second, RESTATEMENT, *reversed(originals())]
    statements = pd.DataFrame(rows).assign(
        period_end=lambda d: pd.to_datetime(d["period_end"]),
        published_on=lambda d: pd.to_datetime(d["published_on"]),
    )
    ids = pd.Series(["C1"])
    revenue = [
        financial_features(statements, ids, pd.Timestamp(as_of))["revenue_latest"].iloc[0]
        for as_of in ("2023-05-01", "2023-05-16", "2023-05-21")
    ]
    assert revenue == [1200.0, 900.0, 950.0]


def test_only_true_duplicates_of_a_version_are_rejected():
    copy = dict(RESTATEMENT)
    conflicting = dict(RESTATEMENT, revenue=1.0)
    result = validate_tables(raw_book([*originals(), RESTATEMENT, copy]))
    fin = result.rejects[result.rejects["table"] == "financial_statements"]
    key = f"customer_id=C1, period_end=2022-12-31, published_on={RESTATED_ON}"
    assert fin[["key", "column", "reason"]].values.tolist() == [[key, "*", "duplicate row"]]
    assert len(result.accepted["financial_statements"]) == 9  # the first copy is kept

    result = validate_tables(raw_book([*originals(), RESTATEMENT, conflicting]))
    fin = result.rejects[result.rejects["table"] == "financial_statements"]
    assert (
        fin[["key", "column", "reason"]].values.tolist()
        == [[key, KEY, "conflicting rows share this key"]] * 2
    )
    kept = result.accepted["financial_statements"]
    assert len(kept) == 8 and (kept["published_on"] < pd.Timestamp(RESTATED_ON)).all()
