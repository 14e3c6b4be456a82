"""Readers and writers for the canonical tables, rejects and feature snapshots (CSV and Parquet)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import CATALOG_VERSION
from features.schemas import TABLES

REQUIRED_TABLES = ("customers", "financial_statements", "repayments")
TEXT_COLUMNS = ("customer_id", "segment", "industry", "region", "type", "reason")
SUFFIXES = (".parquet", ".csv", ".csv.gz")
METADATA_KEY = b"creditrisk"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one table from CSV (``.csv``, ``.csv.gz``) or Parquet; ids and codes stay text.

    Values are not coerced further: ``features.schemas.validate_tables`` parses dates and numbers
    and rejects what does not parse.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        header = pd.read_csv(path, nrows=0).columns
        text = {c: "str" for c in TEXT_COLUMNS if c in header}
        return pd.read_csv(path, dtype=text, low_memory=False)
    raise ValueError(
        f"cannot read {path}: expected a .csv, .csv.gz or .parquet file. "
        "Convert the file to one of these formats."
    )


def read_book(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Read every canonical table found in ``folder`` as ``<table>.parquet|.csv|.csv.gz``.

    customers, financial_statements and repayments are required; events and defaults optional.
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
            raise ValueError(
                f"{name} is in more than one file ({', '.join(p.name for p in found)}) in "
                f"{folder}: keep one and remove the others."
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
