"""``creditrisk validate``: counts table, rejects file and exit codes."""

from __future__ import annotations

import pandas as pd
import typer
from typer.testing import CliRunner

from features.io import write_book
from features.schemas import STATEMENT_AMOUNTS
from pipelines.cli import app


def _app() -> typer.Typer:
    return app


# The required statement columns: the optional inventory column is left out.
STATEMENT_COLUMNS = [
    "customer_id",
    "period_end",
    "published_on",
    *(c for c in STATEMENT_AMOUNTS if c != "inventory"),
]


def _book(folder, credit_limits):
    n = len(credit_limits)
    customers = pd.DataFrame(
        {
            "customer_id": ["C1"],
            "segment": ["sme"],
            "industry": ["metals"],
            "region": ["north"],
            "onboarded_on": pd.to_datetime(["2020-01-01"]),
        }
    )
    repayments = pd.DataFrame(
        {
            "customer_id": "C1",
            "month": pd.date_range("2023-01-01", periods=n, freq="MS"),
            "credit_limit": credit_limits,
            "balance": 0.0,
            "amount_due": 0.0,
            "amount_paid": 0.0,
            "days_past_due": 0,
        }
    )
    statements = pd.DataFrame({c: pd.Series(dtype="str") for c in STATEMENT_COLUMNS})
    tables = {"customers": customers, "financial_statements": statements, "repayments": repayments}
    write_book(tables, folder)


def test_validate_prints_counts_and_writes_rejects(tmp_path):
    _book(tmp_path / "book", [100.0] * 30 + [-1.0])
    rejects = tmp_path / "out" / "rejects.csv"
    result = CliRunner().invoke(
        _app(), ["validate", "--data", str(tmp_path / "book"), "--rejects", str(rejects)]
    )
    assert result.exit_code == 0, result.output
    assert "repayments" in result.output and "3.23%" in result.output
    assert pd.read_csv(rejects)["column"].tolist() == ["credit_limit"]


def test_validate_fails_over_the_threshold_with_a_helpful_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    _book(tmp_path / "home" / "book", [100.0, -1.0])
    result = CliRunner().invoke(
        _app(), ["validate", "--max-reject-rate", "0.4"], terminal_width=200
    )
    assert result.exit_code == 1
    error = result.output[result.output.index("error (refused)") :].strip()
    assert len(error.splitlines()) == 1, error
    assert "repayments 1 of 2 (50.0%)" in error
    assert str(tmp_path / "home" / "rejects" / "rejects.csv") in result.output.replace("\n", "")
    assert "CREDITRISK_MAX_REJECT_RATE" in result.output


def test_validate_explains_a_missing_book(tmp_path):
    result = CliRunner().invoke(_app(), ["validate", "--data", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "creditrisk generate" in result.output
