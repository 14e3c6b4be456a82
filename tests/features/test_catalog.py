"""The feature catalog: complete entries, version hash, constraints, reason texts, enforcement."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from features import build
from features.catalog import (
    CATALOG,
    CATALOG_VERSION,
    FAMILIES,
    WINDOWS,
    Feature,
    catalog_version,
    features_of,
    monotone_constraints,
    reason_text,
)


def tiny_book() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B"],
            "segment": ["sme", "retail"],
            "industry": ["energy", "retail_trade"],
            "region": ["north", "south"],
            "onboarded_on": pd.to_datetime(["2020-01-01", "2021-06-01"]),
            "founded_on": pd.to_datetime(["2010-01-01", None]),
        }
    )
    months = pd.date_range("2022-01-01", periods=12, freq="MS")
    repayments = pd.DataFrame(
        {
            "customer_id": ["A"] * 12 + ["B"] * 12,
            "month": list(months) * 2,
            "credit_limit": 1000.0,
            "balance": 400.0,
            "amount_due": 100.0,
            "amount_paid": 100.0,
            "days_past_due": 0,
        }
    )
    return {"customers": customers, "repayments": repayments}


def test_every_feature_is_complete():
    for name, f in CATALOG.items():
        assert f.name == name
        assert f.family in FAMILIES
        assert f.direction in (-1, 0, 1)
        assert len(f.description) > 10 and f.unit
    assert {f.family for f in CATALOG.values()} == set(FAMILIES)


def test_required_features_are_listed():
    for w in WINDOWS:
        for stem in ("days_past_due_max", "months_30dpd", "months_90dpd", "payment_ratio"):
            assert f"{stem}_{w}m" in CATALOG
    assert CATALOG["revenue_latest"].family == "financial"
    assert CATALOG["credit_limit_latest"].family == "repayment"
    assert CATALOG["days_past_due_current"].direction == 1
    assert CATALOG["industry_default_rate_12m"].family == "market"
    assert features_of("customer") == [
        "segment",
        "industry",
        "region",
        "tenure_months",
        "company_age_years",
    ]


def test_bad_feature_definitions_are_refused():
    with pytest.raises(ValueError, match="family"):
        Feature("x", "weather", "rain in the last month", "mm", 1)
    with pytest.raises(ValueError, match="direction"):
        Feature("x", "market", "rain in the last month", "mm", 2)


def test_version_changes_with_any_edit():
    assert len(CATALOG_VERSION) == 12
    assert catalog_version(CATALOG) == CATALOG_VERSION
    edited = dict(CATALOG)
    edited["leverage"] = dataclasses.replace(CATALOG["leverage"], direction=-1)
    assert catalog_version(edited) != CATALOG_VERSION
    fewer = {k: v for k, v in CATALOG.items() if k != "leverage"}
    assert catalog_version(fewer) != CATALOG_VERSION


def test_monotone_constraints_follow_directions_in_column_order():
    columns = ["payment_ratio_3m", "days_past_due_max_12m", "segment", "leverage"]
    assert monotone_constraints(columns) == [-1, 1, 0, 1]
    with pytest.raises(KeyError, match="not in the feature catalog"):
        monotone_constraints(["leverage", "shoe_size"])
    assert monotone_constraints(["leverage", "shoe_size"], strict=False) == [1, 0]


def test_reason_text():
    assert reason_text("days_past_due_max_12m") == (
        "Highest days past due in the last 12 closed months"
    )
    assert reason_text("LIMIT_BAL") == "LIMIT BAL"


def test_build_emits_only_catalog_features_in_catalog_order():
    out = build.build_features(tiny_book(), "2023-01-01")
    names = list(out.columns[2:])
    assert set(names) <= set(CATALOG)
    assert names == [c for c in CATALOG if c in names]
    assert list(out.columns[:2]) == ["customer_id", "as_of"]


def test_build_refuses_a_feature_missing_from_the_catalog(monkeypatch):
    real = build.repayment_features

    def with_extra(*args):
        return real(*args).assign(secret_sauce=1.0)

    monkeypatch.setattr(build, "repayment_features", with_extra)
    with pytest.raises(AssertionError, match="secret_sauce"):
        build.build_features(tiny_book(), "2023-01-01")
