"""Bulk inserts on the caller's transaction: psycopg COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.sql.schema import Table


def _sqlite_value(value: Any) -> Any:
    """The text SQLAlchemy's SQLite Date/DateTime types store, so reads parse it back."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _sqlite_dates(rows: list[tuple]) -> list[tuple]:
    dated = [i for i, v in enumerate(rows[0]) if isinstance(v, dt.date)]
    if not dated:
        return rows
    columns = list(zip(*rows, strict=True))
    for i in dated:
        cache = {v: _sqlite_value(v) for v in set(columns[i])}
        columns[i] = [cache[v] for v in columns[i]]
    return list(zip(*columns, strict=True))


def fast_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: list[tuple],
    method: str = "auto",
) -> None:
    """Insert `rows` (tuples in `columns` order; JSON columns as text) into `table`.

    method: auto (copy on PostgreSQL, driver elsewhere), copy, driver (DB-API executemany of
    tuples) or core (SQLAlchemy insert() executemany of dicts).
    """
    if not rows:
        return
    dialect = conn.dialect.name
    if method == "auto":
        method = "copy" if dialect == "postgresql" else "driver"
    names = ", ".join(f'"{c}"' for c in columns)
    if method == "copy":
        if dialect != "postgresql":
            raise ValueError("method='copy' needs PostgreSQL; use 'driver' or 'core' elsewhere")
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
    elif method == "driver":
        if dialect == "sqlite":
            rows = _sqlite_dates(rows)
            marks = ", ".join("?" * len(columns))
        else:
            marks = ", ".join(["%s"] * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)
    elif method == "core":
        conn.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])
    else:
        raise ValueError(f"unknown insert method {method!r}; use auto, copy, driver or core")
