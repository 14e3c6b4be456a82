"""Readers and writers for the canonical tables, rejects and feature snapshots (CSV and Parquet).

A file that cannot be read as a table (not UTF-8, empty, a line with more fields than the header,
not Parquet, not gzip) raises `BookReadError` naming the file, the line where known, the reason
and what to do. In CSV an empty field is missing everywhere; ``MISSING_SPELLINGS`` (NA, NULL,
nan, ...) are missing only in number and date columns: in id and code columns they are text.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import CATALOG_VERSION
from features.partition import CONTEXT_COLUMNS, DERIVED_DEFAULT_COLUMNS, partition_tables
from features.schemas import TABLES, TEXT_COLUMNS, ContractError

REQUIRED_TABLES = ("customers", "financial_statements", "repayments")
# A synthetic book's truth (true PDs) lives in this subfolder of the book, beside the tables:
# `read_book` reads only the canonical tables, so it never reaches validation or features.
TRUTH_FOLDER = "truth"
TRUE_PD_FILE = "true_pd.parquet"
SUFFIXES = (".parquet", ".csv", ".csv.gz")
METADATA_KEY = b"creditrisk"
# The CSV spellings of a missing value in number and date columns. Text columns (ids and codes)
# keep every spelling as text: `NA` is a customer id or a region code (North America), `NULL`
# or `None` an id like any other; only an empty field is missing there.
MISSING_SPELLINGS = (
    "", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "None", "#N/A", "<NA>",
)  # fmt: skip
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_PARQUET_SOURCE = re.compile(r"^Could not open Parquet input source '.*?': ")


class BookReadError(ContractError):
    """A file cannot be read as a table: the file (and line), the reason and what to do."""

    def __init__(self, source: str | Path, reason: str, hint: str, line: int | None = None):
        self.source, self.reason, self.hint, self.line = str(source), reason, hint, line
        where = f"{source}:{line}" if line else str(source)
        super().__init__(f"{where}: {reason}. {hint[0].upper()}{hint[1:]}.")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one table from CSV (``.csv``, ``.csv.gz``) or Parquet; ids and codes stay text.

    Values are not coerced further: ``features.schemas.validate_tables`` parses dates and numbers
    and rejects what does not parse. In CSV only an empty field is a missing id or code; number
    and date columns also read ``MISSING_SPELLINGS`` as missing. A file that cannot be read
    (not UTF-8, empty, a line with too many fields, not Parquet) raises `BookReadError`.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return _read_parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        return _read_csv(path)
    raise BookReadError(
        path,
        "cannot read this format: expected a .csv, .csv.gz or .parquet file",
        "convert the file to one of these formats",
    )


def read_book(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Read every canonical table found in ``folder`` as ``<table>.parquet|.csv|.csv.gz``.

    customers, financial_statements and repayments are required; events and defaults optional.
    Nothing else is read: a synthetic book's ``truth/`` folder stays out (see `read_truth`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no customer book at {folder}: create one with `creditrisk generate` or point "
            "--data at a folder holding customers, financial_statements and repayments files."
        )
    tables = {}
    for name in TABLES:
        found = [folder / f"{name}{suffix}" for suffix in SUFFIXES]
        found = [p for p in found if p.exists()]
        if len(found) > 1:
            raise BookReadError(
                folder,
                f"{name} is in more than one file ({', '.join(p.name for p in found)})",
                "keep one and remove the others",
            )
        if found:
            tables[name] = read_table(found[0])
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise FileNotFoundError(
            f"{folder} has no {', '.join(missing)} table: add "
            + ", ".join(f"{t}.parquet (or {t}.csv)" for t in missing)
            + ". An empty table with the canonical columns is fine."
        )
    return tables


def _read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return pd.read_parquet(path, columns=columns)
    except pa.ArrowException as exc:
        raise BookReadError(
            path,
            f"not a readable Parquet file ({_first_line(exc)})",
            "write it again, or export the table as CSV",
        ) from None


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV with text columns as text; unreadable files raise `BookReadError` naming them."""
    try:
        header = pd.read_csv(path, nrows=0).columns
        missing = {c: [""] if c in TEXT_COLUMNS else list(MISSING_SPELLINGS) for c in header}
        text = {c: "str" for c in TEXT_COLUMNS if c in header}
        frame = pd.read_csv(
            path, dtype=text, keep_default_na=False, na_values=missing, low_memory=False
        )
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except pd.errors.EmptyDataError:
        raise _no_header(path) from None
    except pd.errors.ParserError as exc:
        raise _unparsable(path, exc) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise BookReadError(
            path,
            f"not a readable gzip file ({_first_line(exc)})",
            "compress it again with gzip, or give the plain .csv",
        ) from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas made the surplus fields an index
        raise _ragged(path, len(header), len(header) + frame.index.nlevels, line=2)
    return frame


def _open_bytes(path: Path):
    return gzip.open(path) if path.name.lower().endswith(".gz") else path.open("rb")


def _not_utf8(path: Path) -> BookReadError:
    """Where the text stops being UTF-8: the line and the byte (only read on this error)."""
    with _open_bytes(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(_UTF16_BOMS):
                return BookReadError(
                    path,
                    "the file is UTF-16 text, not UTF-8",
                    "save it as UTF-8 (for example `iconv -f UTF-16 -t UTF-8`)",
                    line=1,
                )
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = raw[exc.start]
                return BookReadError(
                    path,
                    f"not UTF-8 text: byte 0x{byte:02x} (a Latin-1 or Windows-1252 file?)",
                    "save the file as UTF-8",
                    line=number,
                )
    return BookReadError(path, "not UTF-8 text", "save the file as UTF-8")


def _no_header(path: Path) -> BookReadError:
    size = path.stat().st_size
    reason = "empty file (0 bytes)" if size == 0 else "no header line (the file is blank)"
    return BookReadError(
        path, reason, "write at least the header line with the table's column names"
    )


def _unparsable(path: Path, exc: pd.errors.ParserError) -> BookReadError:
    ragged = _RAGGED.search(str(exc))
    if ragged is None:
        return BookReadError(
            path, f"not readable as CSV ({_first_line(exc)})", "check the quoting of the values"
        )
    expected, line, saw = (int(g) for g in ragged.groups())
    return _ragged(path, expected, saw, line)


def _ragged(path: Path, expected: int, saw: int, line: int) -> BookReadError:
    return BookReadError(
        path,
        f"{saw} fields where the header has {expected}",
        "remove the extra fields, or quote values that hold a comma",
        line=line,
    )


def _first_line(exc: BaseException) -> str:
    text = _PARQUET_SOURCE.sub("", str(exc)).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` that replaces it only when the write finished."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_book(tables: dict[str, pd.DataFrame], folder: str | Path) -> list[Path]:
    """Write each table to ``folder/<table>.parquet``; returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in tables.items():
        path = folder / f"{name}.parquet"
        with atomic_path(path) as tmp:
            df.to_parquet(tmp, index=False)
        paths.append(path)
    return paths


def write_truth(true_pd: pd.DataFrame, folder: str | Path) -> Path:
    """Write a synthetic book's true PDs to ``folder/truth/true_pd.parquet`` (not a table)."""
    path = Path(folder) / TRUTH_FOLDER / TRUE_PD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        true_pd.to_parquet(tmp, index=False)
    return path


def read_truth(folder: str | Path) -> pd.DataFrame:
    """The true PDs written beside a synthetic book by `write_truth` (for benchmarks only)."""
    path = Path(folder) / TRUTH_FOLDER / TRUE_PD_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no true PDs at {path}: only a synthetic book from `creditrisk generate` has them"
        )
    return pd.read_parquet(path)


def write_rejects(rejects: pd.DataFrame, path: str | Path) -> Path:
    """Write the rejects table (table, key, column, reason) as CSV, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        rejects.to_csv(tmp, index=False)
    return path


def write_snapshots(df: pd.DataFrame, path: str | Path, metadata: dict | None = None) -> Path:
    """Write snapshots as Parquet with ``metadata`` (JSON) in the file's key-value metadata.

    Adds ``catalog_version`` from ``features.catalog`` when the caller did not give one.
    Dates and other non-JSON values in ``metadata`` are stored as strings.
    """
    metadata = dict(metadata or {})
    metadata.setdefault("catalog_version", CATALOG_VERSION)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    existing = table.schema.metadata or {}
    payload = json.dumps(metadata, default=_json_default, sort_keys=True).encode()
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata({**existing, METADATA_KEY: payload}), tmp)
    return path


def read_snapshots(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read snapshots written by ``write_snapshots``: the frame and its metadata dict."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    metadata = json.loads(raw) if raw else {}
    return table.to_pandas(), metadata


def _json_default(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    return str(value)


# A partitioned book: one folder of its own tables per partition of whole customers, each a book
# `read_book` reads (``folder/part-00000/customers.parquet`` ...), so a partition is read alone.
PART_PREFIX = "part-"


def part_folder(folder: str | Path, index: int) -> Path:
    """The folder of partition ``index`` of the partitioned book in ``folder``."""
    return Path(folder) / f"{PART_PREFIX}{index:05d}"


def write_book_part(tables: dict[str, pd.DataFrame], folder: str | Path, index: int) -> Path:
    """Write one partition's tables to ``folder/part-NNNNN/`` (a whole part or none: written
    beside and renamed), replacing any earlier one; returns its folder."""
    final = part_folder(folder, index)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_book(tables, tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def write_partitioned_book(
    tables: dict[str, pd.DataFrame], folder: str | Path, n_partitions: int
) -> list[Path]:
    """Write a book as ``n_partitions`` parts of whole customers (`partition_of`'s hash)."""
    parts = partition_tables(tables, n_partitions)
    return [write_book_part(part, folder, i) for i, part in enumerate(parts)]


def book_parts(folder: str | Path) -> list[Path]:
    """The part folders of the partitioned book in ``folder``, in order (FileNotFoundError if
    none)."""
    folder = Path(folder)
    parts = sorted(p for p in folder.glob(f"{PART_PREFIX}*") if p.is_dir())
    if not parts:
        raise FileNotFoundError(
            f"no partitioned book at {folder}: expected {PART_PREFIX}00000/ ... folders, each "
            "holding customers, financial_statements and repayments files"
        )
    return parts


def read_parts_table(
    folder: str | Path, name: str, columns: list[str] | tuple[str, ...] | None = None
) -> pd.DataFrame | None:
    """One table of every part stacked (``columns`` only, if given): for the small whole-book
    tables. None when no part has it; a part without it while others have it is an error."""
    found = [_table_file(part, name) for part in book_parts(folder)]
    if not any(found):
        return None
    if not all(found):
        missing = next(p for p, f in zip(book_parts(folder), found, strict=True) if f is None)
        raise BookReadError(
            missing,
            f"no {name} table in this part while others have one",
            f"write the part again with its {name} table",
        )
    cols = None if columns is None else list(columns)
    frames = [_read_columns(path, cols) for path in found]
    return pd.concat(frames, ignore_index=True)


def read_context_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """What the whole book's `features.build.book_context` needs, from every part: customers
    and defaults (repayments' days past due instead, for a book without a defaults table)."""
    tables = {name: read_parts_table(folder, name, cols) for name, cols in CONTEXT_COLUMNS.items()}
    if tables["defaults"] is None:
        del tables["defaults"]
        ((name, cols),) = DERIVED_DEFAULT_COLUMNS.items()
        tables[name] = read_parts_table(folder, name, cols)
    return tables


def _table_file(folder: Path, name: str) -> Path | None:
    found = [folder / f"{name}{suffix}" for suffix in SUFFIXES]
    return next((path for path in found if path.exists()), None)


def _read_columns(path: Path, columns: list[str] | None) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return _read_parquet(path, columns)
    frame = read_table(path)
    return frame if columns is None else frame[columns]
