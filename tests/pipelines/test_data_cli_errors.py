"""Data commands fail in one line with exit 2, or take bad rows row by row; never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.io import write_book
from features.schemas import DATE, EVENT_TYPES, SCHEMAS, SEGMENTS, TABLES, validate_tables
from features.synthetic import generate_book
from pipelines.errors import CreditriskError, as_typed
from pipelines.usecases.book import validate_book
from tests.conftest import assert_clean_error
from tests.features.test_reader_errors import CUSTOMERS_HEADER, write_csv_book


def test_validate_takes_time_zones_and_na_ids_without_a_reject(cli, tmp_path):
    book = write_csv_book(tmp_path / "book")
    rejects = tmp_path / "rejects.csv"
    result = cli("validate", "--data", str(book), "--rejects", str(rejects))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert pd.read_csv(rejects).empty


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (
            (CUSTOMERS_HEADER + "C1,sme,metals,north,2020-01-01,surplus\n").encode(),
            ("customers.csv:2:", "6 fields where the header has 5", "Remove the extra fields"),
        ),
        (CUSTOMERS_HEADER.encode("utf-16"), ("customers.csv:1:", "UTF-16", "Save it as UTF-8")),
    ],
    ids=["ragged", "utf16"],
)
def test_validate_names_an_unreadable_file_in_one_line(cli, tmp_path, content, fragments):
    book = write_csv_book(tmp_path / "book")
    (book / "customers.csv").write_bytes(content)
    assert_clean_error(cli("validate", "--data", str(book)), 2, str(book), *fragments)


def test_features_names_an_unreadable_parquet_file(cli, tmp_path):
    book = write_csv_book(tmp_path / "book")
    (book / "repayments.csv").unlink()
    (book / "repayments.parquet").write_bytes(b"not parquet")
    result = cli("features", "--data", str(book), "--as-of", "2021-02-01")
    assert_clean_error(result, 2, "repayments.parquet:", "not a readable Parquet file")


def test_generate_takes_a_tiny_book(cli, tmp_path):
    out = tmp_path / "book"
    result = cli("generate", "--customers", "10", "--months", "1", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(pd.read_parquet(out / "customers.parquet")) == 10
    assert pd.read_parquet(out / "repayments.parquet")["month"].nunique() == 1


def test_generate_refuses_a_negative_seed_in_one_line(cli, tmp_path):
    result = cli("generate", "--customers", "5", "--seed", "-1", "--out", str(tmp_path / "b"))
    assert_clean_error(result, 2, "'--seed'", "below the minimum of 0")
    assert not (tmp_path / "b").exists()


@pytest.fixture
def small_book(tmp_path) -> Path:
    """A synthetic book of 40 customers over 24 months from 2021-01-01."""
    folder = tmp_path / "small"
    write_book(generate_book(n_customers=40, months=24, start="2021-01-01"), folder)
    return folder


@pytest.mark.parametrize(
    ("dates", "fragments"),
    [
        (
            ("--from", "2023-01-01", "--to", "2022-01-01"),
            ("'--from'", "--from 2023-01-01 is after --to 2022-01-01", "Swap them"),
        ),
        (
            ("--as-of", "2019-06-01"),
            ("'--as-of'", "2019-06-01 outside the book", "from 2021-01-01"),
        ),
    ],
    ids=["from-after-to", "before-the-book"],
)
def test_features_refuses_dates_outside_the_book_in_one_line(cli, small_book, dates, fragments):
    result = cli("features", "--data", str(small_book), *dates)
    assert_clean_error(result, 2, *fragments)
    assert not (cli.home / "snapshots").exists()


# Property: malformed tables give a typed error or a reconciled result, never another exception.

_NA_SPELLINGS = ["NA", "NULL", "nan", "None", "", " ", "N/A"]
_TZ_DATES = [
    "2021-01-01T00:00:00+05:00",
    "2021-01-31T23:30:00Z",
    "2021-02-01 00:00:00-0800",
    "2021-03-01Z",
    "2021-13-01T00:00:00+01:00",
]
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(_NA_SPELLINGS + _TZ_DATES + ["2021-01-01", "C1", "sme", "lawsuit", "1e400"]),
    st.datetimes().map(pd.Timestamp),
    st.datetimes(timezones=st.timezones()).map(pd.Timestamp),
)
_IDS = st.sampled_from(["C1", "C2", "NA", "NULL", "", None, 1, 2.5])


def _plausible(column: str, dtype: str) -> st.SearchStrategy:
    """Values of the right kind, ids from a small pool (so keys repeat), dates with zones."""
    if column == "customer_id":
        return _IDS
    if dtype == DATE:
        return st.sampled_from([*_TZ_DATES[:4], "2021-01-01", "2021-02-01"])
    if dtype in ("float64", "int64"):
        return st.one_of(st.integers(1, 3), st.floats(0, 1e6), st.just("2.5"))
    return st.sampled_from({"segment": SEGMENTS, "type": EVENT_TYPES}.get(column, ("north",)))


@st.composite
def malformed_books(draw) -> dict[str, pd.DataFrame]:
    """Up to five tiny tables, each column possibly missing, junk-valued or oddly typed."""
    names = draw(st.lists(st.sampled_from(TABLES), unique=True, min_size=1, max_size=5))
    if draw(st.integers(0, 9)) > 0 and "customers" not in names:
        names.insert(0, "customers")
    book = {}
    for name in names:
        rows = draw(st.integers(0, 4))
        schema = SCHEMAS[name].columns
        dropped = draw(st.sampled_from(list(schema))) if draw(st.integers(0, 5)) == 0 else None
        columns = {}
        for column, col in schema.items():
            if column != dropped:
                values = _plausible(column, str(col.dtype))
                if draw(st.integers(0, 3)) == 0:
                    values = st.one_of(values, _JUNK)
                columns[column] = draw(st.lists(values, min_size=rows, max_size=rows))
        if draw(st.booleans()):
            columns["extra"] = draw(st.lists(_JUNK, min_size=rows, max_size=rows))
        frame = pd.DataFrame(columns, index=range(rows))
        if draw(st.booleans()):  # let pandas infer types, as a Parquet file would hold them
            frame = frame.infer_objects()
        if rows and draw(st.booleans()):
            frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)  # a duplicate row
        book[name] = frame
    return book


def _reconciled(result, tables: set[str]) -> None:
    counts = result.counts.set_index("table")
    assert set(counts.index) == tables
    for name in tables:
        rows_in, accepted, rejected = counts.loc[name, ["rows_in", "accepted", "rejected"]]
        assert rows_in == accepted + rejected
        assert len(result.accepted[name]) == accepted
        assert (result.rejects["table"] == name).any() == (rejected > 0)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=malformed_books())
def test_malformed_tables_give_a_typed_error_or_reconciled_counts(book):
    try:
        with as_typed():
            result = validate_tables(book, max_reject_rate=1.0)
    except CreditriskError:
        return
    expected = {name: len(frame) for name, frame in book.items()}
    _reconciled(result, set(book))
    assert result.counts.set_index("table")["rows_in"].to_dict() == expected


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=malformed_books(), as_csv=st.booleans())
def test_malformed_books_on_disk_give_a_typed_error_or_reconciled_counts(book, as_csv):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, frame in book.items():
            if as_csv:
                frame.to_csv(folder / f"{name}.csv", index=False)
            else:
                _to_parquet(frame, folder / f"{name}.parquet")
        try:
            validated = validate_book(folder, 1.0, folder / "rejects.csv", enforce=False)
        except CreditriskError:
            return
        _reconciled(validated.validation, set(book))
        assert (folder / "rejects.csv").exists()


def _to_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet holds one type per column: columns of mixed values are written as text."""
    typed = frame.infer_objects()
    text = {
        c: typed[c].map(lambda v: None if v is None or v != v else str(v))
        for c in typed
        if typed[c].dtype == object
    }
    typed.assign(**text).to_parquet(path, index=False)


def test_features_without_validation_refuses_an_untyped_csv_book(cli, tmp_path):
    book = write_csv_book(tmp_path / "book")
    result = cli("features", "--data", str(book), "--no-validate", "--as-of", "2021-02-01")
    assert_clean_error(result, 2, "customers", "onboarded_on", "Drop --no-validate")


def test_generate_writes_the_truth_beside_the_book_unless_told_not_to(cli, tmp_path):
    from features.io import read_truth

    args = ("generate", "--customers", "200", "--months", "30")
    with_truth = cli(*args, "--out", str(tmp_path / "with"))
    without = cli(*args, "--no-truth", "--out", str(tmp_path / "without"))
    assert with_truth.returncode == 0 and without.returncode == 0, without.stderr
    assert not read_truth(tmp_path / "with").empty
    assert not (tmp_path / "without" / "truth").exists()
    for table in ("customers", "repayments", "financial_statements"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "with" / f"{table}.parquet"),
            pd.read_parquet(tmp_path / "without" / f"{table}.parquet"),
        )
