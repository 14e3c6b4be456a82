"""Legal, complaint and news events: counts over the 12 months before ``as_of``, days since the
last one of each kind, and a severity-weighted count. Known iff occurred_on < as_of.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.customer import known_rows

WINDOW_MONTHS = 12
KINDS = {
    "lawsuits": ("lawsuit", "enforcement"),
    "complaints": ("complaint",),
    "negative_news": ("negative_news",),
    "restructurings": ("restructuring",),
}
DAYS_SINCE = {"lawsuit": "lawsuits", "complaint": "complaints", "negative_news": "negative_news"}


def event_features(
    events: pd.DataFrame, customer_ids: pd.Series, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Event features of ``customer_ids`` (same order); counts are 0 where a customer has none."""
    known, code = known_rows(events, "occurred_on", customer_ids, as_of)
    kind = known["type"].astype(str).to_numpy()
    occurred = pd.to_datetime(known["occurred_on"]).to_numpy()
    severity = known["severity"].to_numpy(dtype=float, na_value=1.0)
    features = event_counts(kind, occurred, severity, code, len(customer_ids), as_of)
    return pd.DataFrame(features, index=customer_ids.index)


def event_counts(
    kind: np.ndarray,
    occurred: np.ndarray,
    severity: np.ndarray,
    code: np.ndarray,
    n: int,
    as_of: pd.Timestamp,
) -> dict[str, np.ndarray]:
    """Event features of ``n`` customers from the events known at ``as_of``: their type (text),
    date, severity (float) and customer position ``code``."""
    recent = occurred >= np.datetime64(as_of - pd.DateOffset(months=WINDOW_MONTHS))
    days_ago = (np.datetime64(as_of) - occurred) / np.timedelta64(1, "D")

    of_kind = {name: np.isin(kind, types) for name, types in KINDS.items()}
    out: dict[str, np.ndarray] = {}
    for name, rows in of_kind.items():
        out[f"{name}_12m"] = np.bincount(code[rows & recent], minlength=n).astype(float)
    out["event_severity_12m"] = np.bincount(code[recent], weights=severity[recent], minlength=n)
    for name, kind_name in DAYS_SINCE.items():
        rows = of_kind[kind_name]
        since = np.full(n, np.inf)
        np.minimum.at(since, code[rows], days_ago[rows])
        out[f"days_since_{name}"] = np.where(np.isinf(since), np.nan, since)
    return out
