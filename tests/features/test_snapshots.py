"""Snapshots: structure, customer and market families by hand, several dates, the CLI."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.catalog import CATALOG, CATALOG_VERSION
from features.io import read_snapshots, write_book
from features.market import RATE, industry_default_rates
from features.snapshots import (
    ID,
    LABEL,
    TIME,
    as_of_range,
    build_snapshot,
    build_snapshots,
    snapshot_summary,
)

AS_OF = pd.Timestamp("2022-07-01")


def tiny_book() -> dict[str, pd.DataFrame]:
    ids = list("ABCDEF")
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "segment": ["corporate", "sme", "sme", "sme", "retail", "retail"],
            "industry": ["energy"] * 4 + ["retail_trade"] * 2,
            "region": ["north", "north", "south", "south", "east", "east"],
            "onboarded_on": pd.to_datetime(["2020-01-01"] * 4 + ["2020-01-15", "2020-01-01"]),
            "founded_on": pd.to_datetime(["2001-01-01"] * 3 + ["2012-07-01", None, None]),
        }
    )
    months = pd.date_range("2021-01-01", periods=30, freq="MS")
    repayments = pd.DataFrame(
        [(c, m) for c in ids for m in months], columns=["customer_id", "month"]
    ).assign(credit_limit=1000.0, balance=250.0, amount_due=50.0, amount_paid=50.0, days_past_due=0)
    defaults = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D", "F"],
            "defaulted_on": pd.to_datetime(
                ["2021-03-01", "2021-12-01", "2022-07-01", "2022-07-02", "2021-07-01"]
            ),
            "reason": "bankruptcy",
        }
    )
    return {"customers": customers, "repayments": repayments, "defaults": defaults}


def test_industry_default_rate_by_hand():
    tables = tiny_book()
    from features.labels import default_dates

    rates = industry_default_rates(tables["customers"], default_dates(tables), AS_OF)
    # energy: A defaulted before the window, B and C inside it (C on the as-of date), D after.
    assert rates.loc["energy", "customers"] == 3 and rates.loc["energy", "defaults"] == 2
    assert rates.loc["energy", RATE] == pytest.approx(2 / 3)
    # retail_trade: F defaulted on the window start, so only E is at risk; no defaults.
    assert rates.loc["retail_trade", RATE] == 0.0


def test_snapshot_rows_columns_and_customer_family():
    snap = build_snapshot(tiny_book(), AS_OF).set_index(ID)
    assert list(snap.index) == ["D", "E"]  # A, B, C already in default; F too
    assert (snap[TIME] == AS_OF).all()
    assert snap.loc["D", LABEL] == 1.0 and snap.loc["E", LABEL] == 0.0
    assert snap.loc["D", RATE] == pytest.approx(2 / 3) and snap.loc["E", RATE] == 0.0
    assert snap.loc["D", "tenure_months"] == 30
    assert snap.loc["E", "tenure_months"] == 29  # the 15th: month 30 not completed
    assert snap.loc["D", "company_age_years"] == pytest.approx(3652 / 365.25)
    assert pd.isna(snap.loc["E", "company_age_years"])
    for column in ("segment", "industry", "region"):
        assert isinstance(snap[column].dtype, pd.CategoricalDtype)
    assert list(snap["segment"].cat.categories) == ["corporate", "sme", "retail"]
    assert list(snap["industry"].cat.categories) == ["energy", "retail_trade"]
    assert snap.loc["D", "payment_ratio_12m"] == 1.0
    assert pd.isna(snap.loc["D", "payment_ratio_24m"])  # 18 closed months only
    assert snap.loc["D", "utilisation_mean_12m"] == 0.25
    assert set(snap.columns) - {TIME, LABEL} <= set(CATALOG)
    assert "leverage" not in snap.columns  # no statements table: that family does not apply


def test_several_dates_stack_with_consistent_categories():
    tables = tiny_book()
    snaps = build_snapshots(tables, ["2022-07-01", "2021-01-01", "2021-07-01"])
    assert snaps[TIME].is_monotonic_increasing
    summary = snapshot_summary(snaps)
    assert summary["rows"].tolist() == [6, 4, 2]  # Jul 2021: A, and F on the day, in default
    assert summary["labelled"].tolist() == [6, 4, 2]  # repayments observed until 2023-07-01
    # A, B and F default within 12 months of Jan 2021; B and C (on the last day) of Jul 2021.
    assert summary["default_rate"].tolist() == pytest.approx([3 / 6, 2 / 4, 1 / 2])
    assert isinstance(snaps["industry"].dtype, pd.CategoricalDtype)
    with pytest.raises(ValueError, match="as-of"):
        build_snapshots(tables, [])


def test_as_of_range():
    assert as_of_range("2022-01-01", "2022-12-31", 3) == list(
        pd.to_datetime(["2022-01-01", "2022-04-01", "2022-07-01", "2022-10-01"])
    )
    with pytest.raises(ValueError):
        as_of_range("2022-01-01", "2021-01-01", 3)


def test_cli_writes_parquet_with_the_catalog_version(tmp_path, monkeypatch):
    from pipelines.cli import app

    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    statements = pd.DataFrame(
        {"customer_id": pd.Series([], dtype="str")}
        | {c: pd.Series([], dtype="datetime64[ns]") for c in ("period_end", "published_on")}
        | {c: pd.Series([], dtype=float) for c in ("revenue", "ebit", "interest_expense")}
        | {c: pd.Series([], dtype=float) for c in ("net_income", "total_assets", "cash")}
        | {c: pd.Series([], dtype=float) for c in ("total_liabilities", "equity")}
        | {c: pd.Series([], dtype=float) for c in ("current_assets", "current_liabilities")}
    )
    write_book(tiny_book() | {"financial_statements": statements}, tmp_path / "book")
    out = tmp_path / "snaps.parquet"
    args = ["features", "--data", str(tmp_path / "book"), "--out", str(out), "--no-validate"]
    series = ["--from", "2021-01-01", "--to", "2022-07-01", "--every", "6"]
    result = CliRunner().invoke(app, [*args, *series])
    assert result.exit_code == 0, result.output
    assert "Feature snapshots" in result.output and str(out.name) in result.output
    frame, metadata = read_snapshots(out)
    assert metadata["catalog_version"] == CATALOG_VERSION
    assert metadata["as_of"] == ["2021-01-01", "2021-07-01", "2022-01-01", "2022-07-01"]
    assert frame[TIME].nunique() == 4
    assert frame["leverage"].isna().all()  # an empty statements table: the family is all NaN
    missing = CliRunner().invoke(app, args)
    assert missing.exit_code != 0 and "--as-of" in missing.output
