"""Request bodies from a book: one customer's raw rows as `POST /v1/score` takes them (for the
README's example, the tests, the benchmark and the web page's "score from the book")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

CHILD_TABLES = ("financial_statements", "repayments", "events", "defaults")


def _json_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return None if pd.isna(value) else f"{pd.Timestamp(value).date()}"
    if isinstance(value, str):
        return value
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _rows(frame: pd.DataFrame, drop: tuple[str, ...]) -> list[dict[str, Any]]:
    records = frame.drop(columns=list(drop), errors="ignore").to_dict("records")
    return [{k: _json_value(v) for k, v in r.items()} for r in records]


def customer_payload(
    tables: dict[str, pd.DataFrame], customer_id: str, as_of: pd.Timestamp | str | None = None
) -> dict[str, Any]:
    """The customer's rows of every table (all of them: features read only what was known at
    ``as_of``); with ``as_of`` the body of `POST /v1/score`, else of one batch entry."""
    customers = tables["customers"]
    found = customers[customers["customer_id"].astype(str) == str(customer_id)]
    if found.empty:
        raise KeyError(f"customer {customer_id!r} is not in the book")
    body: dict[str, Any] = {"customer": _rows(found, ())[0]}
    for name in CHILD_TABLES:
        frame = tables.get(name)
        if frame is None:
            continue
        mine = frame[frame["customer_id"].astype(str) == str(customer_id)]
        body[name] = _rows(mine, ("customer_id",))
    if as_of is not None:
        body = {"as_of": f"{pd.Timestamp(as_of).date()}", **body}
    return body
