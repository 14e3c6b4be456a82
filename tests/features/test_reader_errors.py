"""Readers and dates: unreadable files name the file and line; time zones and `NA` ids are rows."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from features.io import BookReadError, read_book, read_table
from features.schemas import validate_tables

# A CSV book whose every date column carries a time zone (an offset east and west of UTC, a
# trailing Z) and whose ids are spelled NA, NULL, nan and None: every row is valid.
TZ_AND_NA_BOOK = {
    "customers": (
        "customer_id,segment,industry,region,onboarded_on,founded_on\n"
        "NA,sme,metals,NA,2020-01-01T00:00:00+05:00,1999-12-31T23:30:00-05:00\n"
        "NULL,retail,food,south,2020-02-01T00:00:00Z,\n"
        "nan,corporate,energy,north,2020-03-01,2001-01-01Z\n"
        "None,sme,metals,east,2020-04-01 08:00:00+0100,\n"
    ),
    "financial_statements": (
        "customer_id,period_end,published_on,revenue,ebit,interest_expense,net_income,"
        "total_assets,total_liabilities,current_assets,current_liabilities,cash,equity\n"
        "NA,2020-12-31T00:00:00+01:00,2021-03-31T23:59:59-08:00,100,10,1,5,80,40,30,20,5,40\n"
        "NULL,2020-12-31Z,2021-04-30T00:00:00+05:30,NA,NULL,,None,80,40,30,20,5,40\n"
    ),
    "repayments": (
        "customer_id,month,credit_limit,balance,amount_due,amount_paid,days_past_due\n"
        "NA,2021-01-01T00:00:00+01:00,100,0,0,0,0\n"
        "NA,2021-02-01T00:00:00Z,100,0,NA,0,0\n"
        "NULL,2021-01-01T00:00:00-05:00,100,0,0,0,0\n"
        "nan,2021-01-01,100,0,0,0,0\n"
        "None,2021-01-01T00:00:00+14:00,100,0,0,0,0\n"
    ),
    "events": ("customer_id,occurred_on,type,severity\nNA,2021-01-10T12:00:00+09:00,lawsuit,3\n"),
    "defaults": "customer_id,defaulted_on,reason\nNULL,2021-06-01T00:00:00Z,NA\n",
}

CUSTOMERS_HEADER = "customer_id,segment,industry,region,onboarded_on\n"


def write_csv_book(folder: Path, tables: dict[str, str] = TZ_AND_NA_BOOK) -> Path:
    """Write CSV texts as ``<table>.csv`` files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def test_time_zones_in_every_date_column_give_the_local_calendar_date(tmp_path):
    result = validate_tables(read_book(write_csv_book(tmp_path)))
    assert result.rejects.empty, result.rejects.to_dict("records")
    accepted = result.accepted
    customers = accepted["customers"].set_index("customer_id")
    assert customers.loc["NA", "onboarded_on"] == pd.Timestamp("2020-01-01")  # UTC: 2019-12-31
    assert customers.loc["NA", "founded_on"] == pd.Timestamp("1999-12-31")  # UTC: 2000-01-01
    assert customers.loc["None", "onboarded_on"] == pd.Timestamp("2020-04-01")
    statements = accepted["financial_statements"].set_index("customer_id")
    assert statements.loc["NA", "published_on"] == pd.Timestamp("2021-03-31")  # UTC: 04-01
    # a month start east of UTC is still the first of the month (in UTC the 31st before)
    assert set(accepted["repayments"]["month"]) == set(pd.to_datetime(["2021-01-01", "2021-02-01"]))
    assert accepted["events"]["occurred_on"].tolist() == [pd.Timestamp("2021-01-10")]
    assert accepted["defaults"]["defaulted_on"].tolist() == [pd.Timestamp("2021-06-01")]


def test_tz_aware_and_mixed_parquet_columns_are_dates_row_by_row(tmp_path):
    months = pd.to_datetime(["2023-01-01", "2023-02-01"]).tz_localize("Asia/Kolkata")
    pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3", "C4"],
            "segment": "sme",
            "industry": "metals",
            "region": "north",
            "onboarded_on": [
                "2020-01-01T00:00:00+05:00",
                "2020-01-01T00:00:00Z",
                "2020-01-01",
                "2020-01-01T25:00:00Z",  # no such hour: this row alone is rejected
            ],
        }
    ).to_parquet(tmp_path / "customers.parquet")
    repayments = pd.DataFrame(
        {
            "customer_id": ["C1", "C1"],
            "month": months,
            "credit_limit": 100.0,
            "balance": 0.0,
            "amount_due": 0.0,
            "amount_paid": 0.0,
            "days_past_due": 0,
        }
    )
    repayments.to_parquet(tmp_path / "repayments.parquet")
    (tmp_path / "financial_statements.csv").write_text(TZ_AND_NA_BOOK["financial_statements"])
    tables = read_book(tmp_path)
    tables["financial_statements"] = tables["financial_statements"].iloc[:0]
    result = validate_tables(tables)
    rejects = result.rejects[["table", "key", "column"]].to_dict("records")
    assert rejects == [{"table": "customers", "key": "customer_id=C4", "column": "onboarded_on"}]
    assert "not a date" in result.rejects["reason"].iloc[0]
    assert set(result.accepted["customers"]["onboarded_on"]) == {pd.Timestamp("2020-01-01")}
    assert result.accepted["repayments"]["month"].tolist() == list(
        pd.to_datetime(["2023-01-01", "2023-02-01"])
    )


def test_na_spellings_are_ids_in_text_columns_and_missing_in_numbers(tmp_path):
    tables = read_book(write_csv_book(tmp_path))
    for name in ("customers", "financial_statements", "repayments", "events", "defaults"):
        assert tables[name]["customer_id"].notna().all(), name
    assert tables["customers"]["customer_id"].tolist() == ["NA", "NULL", "nan", "None"]
    assert tables["customers"]["region"].tolist()[0] == "NA"  # North America, not a gap
    assert tables["defaults"]["reason"].tolist() == ["NA"]
    statements = tables["financial_statements"]
    assert statements[["revenue", "ebit", "interest_expense", "net_income"]].iloc[1].isna().all()
    assert tables["repayments"]["amount_due"].isna().tolist() == [False, True, False, False, False]
    counts = validate_tables(tables).counts.set_index("table")
    assert counts["rejected"].sum() == 0
    assert counts["accepted"].to_dict() == {
        "customers": 4,
        "financial_statements": 2,
        "repayments": 5,
        "events": 1,
        "defaults": 1,
    }


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_empty_id_is_missing_in_csv_and_parquet_alike(tmp_path, suffix):
    frame = pd.DataFrame(
        {
            "customer_id": ["C1", "", "  "],
            "segment": "sme",
            "industry": "metals",
            "region": "north",
            "onboarded_on": "2020-01-01",
        }
    )
    path = tmp_path / f"customers{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    result = validate_tables({"customers": read_table(path)})
    assert result.accepted["customers"]["customer_id"].tolist() == ["C1"]
    assert result.rejects[["column", "reason"]].drop_duplicates().values.tolist() == [
        ["customer_id", "missing value"]
    ]


def _read_error(path: Path) -> BookReadError:
    with pytest.raises(BookReadError) as info:
        read_table(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_a_utf16_file_is_named_with_its_encoding(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS_HEADER + "C1,sme,metals,north,2020-01-01\n", encoding="utf-16")
    error = _read_error(path)
    assert (error.line, error.reason) == (1, "the file is UTF-16 text, not UTF-8")
    assert "UTF-8" in error.hint


@pytest.mark.parametrize("name", ["customers.csv", "customers.csv.gz"])
def test_a_latin1_file_names_the_line_and_byte(tmp_path, name):
    text = CUSTOMERS_HEADER + "C1,sme,metals,north,2020-01-01\nC2,sme,Café,north,2020-01-01\n"
    path = tmp_path / name
    data = text.encode("latin-1")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    error = _read_error(path)
    assert error.line == 3 and "byte 0xe9" in error.reason and "not UTF-8" in error.reason


@pytest.mark.parametrize("name", ["customers.csv", "customers.csv.gz"])
def test_an_empty_file_is_named(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    error = _read_error(path)
    assert error.reason == "empty file (0 bytes)" and "header line" in error.hint


@pytest.mark.parametrize(
    ("rows", "line"),
    [
        ("C1,sme,metals,north,2020-01-01\n\nC2,sme,metals,north,2020-01-01,surplus\n", 4),
        ("C1,sme,metals,north,2020-01-01,surplus\n", 2),  # pandas would shift it into an index
    ],
    ids=["one-line", "every-line"],
)
def test_a_ragged_line_is_named(tmp_path, rows, line):
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS_HEADER + rows)
    error = _read_error(path)
    assert (error.line, error.reason) == (line, "6 fields where the header has 5")


@pytest.mark.parametrize("content", [b"", b"PAR1 but not really parquet", b"x" * 100])
def test_an_unreadable_parquet_file_is_named(tmp_path, content):
    path = tmp_path / "repayments.parquet"
    path.write_bytes(content)
    error = _read_error(path)
    assert error.reason.startswith("not a readable Parquet file")


def test_read_book_names_every_unreadable_table_file(tmp_path):
    write_csv_book(tmp_path)
    (tmp_path / "repayments.csv").write_bytes(b"")
    with pytest.raises(BookReadError, match=r"repayments\.csv: empty file"):
        read_book(tmp_path)
    (tmp_path / "repayments.csv.gz").write_bytes(gzip.compress(b"x"))
    with pytest.raises(BookReadError, match="repayments is in more than one file"):
        read_book(tmp_path)
