"""The Taiwan credit card adapter: mapping on a tiny frame, and the real file where present."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.adapters.taiwan import (
    AS_OF,
    days_past_due,
    load_taiwan,
    taiwan_labels,
    taiwan_tables,
)
from features.schemas import validate_tables

STATUS = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]


def _raw() -> pd.DataFrame:
    row = {"ID": 7, "LIMIT_BAL": 50000, "SEX": 2, "EDUCATION": 2, "MARRIAGE": 1, "AGE": 30}
    row |= dict(zip(STATUS, [3, 2, 0, -1, -2, 1], strict=True))  # Sep .. Apr
    row |= {
        f"BILL_AMT{k}": b for k, b in zip(range(1, 7), [600, 500, -40, 300, 0, 100], strict=True)
    }
    row |= {f"PAY_AMT{k}": p for k, p in zip(range(1, 7), [0, 10, 20, 30, 40, 50], strict=True)}
    row["default.payment.next.month"] = 1
    return pd.DataFrame([row])


def test_status_codes_map_to_days_past_due():
    assert days_past_due(np.array([-2, -1, 0, 1, 2, 8])).tolist() == [0, 0, 0, 30, 60, 240]


def test_six_months_april_to_september_with_payments_against_previous_bill():
    rep = taiwan_tables(_raw())["repayments"]
    assert rep["month"].dt.strftime("%Y-%m").tolist() == [
        "2005-04", "2005-05", "2005-06", "2005-07", "2005-08", "2005-09"
    ]  # fmt: skip
    assert rep["customer_id"].unique().tolist() == ["TW00007"]
    assert rep["days_past_due"].tolist() == [30, 0, 0, 0, 60, 90]
    assert rep["balance"].tolist() == [100, 0, 300, -40, 500, 600]
    assert rep["amount_paid"].tolist() == [50, 40, 30, 20, 10, 0]
    # due = previous month's bill, a credit balance (-40) owes nothing, April's due is unknown
    assert rep["amount_due"].tolist()[1:] == [100, 0, 300, 0, 500]
    assert np.isnan(rep["amount_due"].iloc[0])
    assert (rep["credit_limit"] == 50000).all()


def test_protected_attributes_do_not_reach_the_tables():
    tables = taiwan_tables(_raw())
    columns = {c for df in tables.values() for c in df.columns}
    assert not columns & {"SEX", "AGE", "MARRIAGE", "EDUCATION"}
    assert tables["customers"].iloc[0][["segment", "industry", "region"]].tolist() == [
        "retail", "consumer", "TW"
    ]  # fmt: skip


def test_labels_are_the_files_own_next_month_default():
    labels = taiwan_labels(_raw())
    assert labels.to_dict("records") == [
        {"customer_id": "TW00007", "as_of": AS_OF, "default_flag": 1.0}
    ]


@pytest.fixture(scope="module")
def taiwan(datasets_dir):
    path = datasets_dir / "taiwan_credit_default" / "UCI_Credit_Card.csv"
    if not path.exists():
        pytest.skip(f"Taiwan credit card file not found at {path}")
    return pd.read_csv(path), load_taiwan(path)


@pytest.mark.realdata
def test_real_file_row_counts_and_label_rate(taiwan):
    _, (tables, labels) = taiwan
    assert len(tables["customers"]) == 30000
    assert len(tables["repayments"]) == 180000
    assert tables["financial_statements"].empty
    assert labels["default_flag"].sum() == 6636
    assert round(labels["default_flag"].mean() * 100, 2) == 22.12


@pytest.mark.realdata
def test_real_file_days_past_due_follow_pay_status(taiwan):
    raw, (tables, _) = taiwan
    rep = tables["repayments"]
    september = rep[rep["month"] == "2005-09-01"].reset_index(drop=True)
    assert (september["days_past_due"] == raw["PAY_0"].clip(lower=0) * 30).all()
    assert (rep["days_past_due"] >= 90).groupby(rep["customer_id"]).any().sum() == 1193
    first = rep[rep["customer_id"] == "TW00001"]  # PAY 2, 2, -1, -1, -2, -2 (Sep .. Apr)
    assert first["days_past_due"].tolist() == [0, 0, 0, 0, 60, 60]


@pytest.mark.realdata
def test_real_file_passes_the_contract(taiwan):
    _, (tables, _) = taiwan
    result = validate_tables(tables)
    assert result.rejects.empty
    assert result.counts["rejected"].sum() == 0
