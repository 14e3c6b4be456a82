"""Readers and writers: CSV and Parquet tables, books, rejects and snapshots with metadata."""

from __future__ import annotations

import pandas as pd
import pytest

from features.catalog import CATALOG_VERSION
from features.io import (
    read_book,
    read_snapshots,
    read_table,
    write_book,
    write_rejects,
    write_snapshots,
)

CUSTOMERS_CSV = "customer_id,segment,industry,region,onboarded_on\n007,sme,metals,01,2020-01-01\n"


def test_csv_keeps_ids_and_codes_as_text(tmp_path):
    (tmp_path / "customers.csv").write_text(CUSTOMERS_CSV)
    df = read_table(tmp_path / "customers.csv")
    assert df.loc[0, "customer_id"] == "007"
    assert df.loc[0, "region"] == "01"


def test_gzipped_csv_and_parquet_read_the_same_rows(tmp_path):
    df = pd.DataFrame({"customer_id": ["C1", "C2"], "balance": [1.5, -2.0]})
    df.to_csv(tmp_path / "t.csv.gz", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv.gz"), df)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), df)


def test_unknown_format_says_what_is_supported(tmp_path):
    (tmp_path / "t.xlsx").write_text("")
    with pytest.raises(ValueError, match=r"\.csv, \.csv\.gz or \.parquet"):
        read_table(tmp_path / "t.xlsx")


def _tiny_book() -> dict[str, pd.DataFrame]:
    return {
        "customers": pd.DataFrame(
            {
                "customer_id": ["C1"],
                "segment": pd.Categorical(["sme"], categories=["corporate", "sme", "retail"]),
                "onboarded_on": pd.to_datetime(["2020-01-01"]),
            }
        ),
        "financial_statements": pd.DataFrame({"customer_id": pd.Series([], dtype="str")}),
        "repayments": pd.DataFrame(
            {"customer_id": ["C1"], "month": pd.to_datetime(["2023-01-01"]), "days_past_due": [0]}
        ),
    }


def test_write_book_then_read_book_round_trips_with_optional_tables_absent(tmp_path):
    book = _tiny_book()
    paths = write_book(book, tmp_path / "book")
    assert sorted(p.name for p in paths) == [
        "customers.parquet",
        "financial_statements.parquet",
        "repayments.parquet",
    ]
    back = read_book(tmp_path / "book")
    assert set(back) == set(book)  # no events, no defaults
    for name, df in book.items():
        pd.testing.assert_frame_equal(back[name], df)
    assert isinstance(back["customers"]["segment"].dtype, pd.CategoricalDtype)


def test_read_book_mixes_csv_and_parquet(tmp_path):
    write_book(_tiny_book(), tmp_path)
    (tmp_path / "customers.parquet").unlink()
    (tmp_path / "customers.csv").write_text(CUSTOMERS_CSV)
    assert read_book(tmp_path)["customers"]["customer_id"].tolist() == ["007"]


def test_read_book_names_missing_required_tables(tmp_path):
    write_book({"customers": _tiny_book()["customers"]}, tmp_path)
    with pytest.raises(FileNotFoundError, match="no financial_statements, repayments table"):
        read_book(tmp_path)
    with pytest.raises(FileNotFoundError, match="creditrisk generate"):
        read_book(tmp_path / "absent")


def test_read_book_refuses_two_files_for_one_table(tmp_path):
    write_book(_tiny_book(), tmp_path)
    (tmp_path / "repayments.csv").write_text("customer_id\nC1\n")
    with pytest.raises(ValueError, match="repayments is in more than one file"):
        read_book(tmp_path)


def test_snapshots_round_trip_categories_and_metadata(tmp_path):
    df = pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "as_of": pd.to_datetime(["2023-06-30", "2023-06-30"]),
            "segment": pd.Categorical(["retail", "sme"], categories=["corporate", "sme", "retail"]),
            "days_past_due_max_12m": [0.0, float("nan")],
            "default_flag": [1.0, float("nan")],
        }
    )
    meta = {
        "catalog_version": "7",
        "horizon_months": 12,
        "as_of_dates": [pd.Timestamp("2023-06-30")],
    }
    write_snapshots(df, tmp_path / "s" / "snapshots.parquet", meta)
    back, metadata = read_snapshots(tmp_path / "s" / "snapshots.parquet")
    pd.testing.assert_frame_equal(back, df)
    assert list(back["segment"].cat.categories) == ["corporate", "sme", "retail"]
    assert metadata == {"catalog_version": "7", "horizon_months": 12, "as_of_dates": ["2023-06-30"]}


def test_snapshots_record_the_catalog_version_by_default(tmp_path):
    write_snapshots(pd.DataFrame({"customer_id": ["C1"]}), tmp_path / "s.parquet")
    assert read_snapshots(tmp_path / "s.parquet")[1] == {"catalog_version": CATALOG_VERSION}


def test_write_rejects_creates_the_folder(tmp_path):
    rejects = pd.DataFrame(
        {"table": ["repayments"], "key": ["customer_id=C1, month=2023-01-01"], "column": ["x"],
         "reason": ["not a number"]}
    )  # fmt: skip
    path = write_rejects(rejects, tmp_path / "rejects" / "rejects.csv")
    pd.testing.assert_frame_equal(pd.read_csv(path, dtype="str"), rejects.astype("str"))
