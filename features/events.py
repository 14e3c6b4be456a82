"""Legal, complaint and news events: counts over the 12 months before ``as_of``, days since the
last one of each kind, and a severity-weighted count. Known iff occurred_on < as_of.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from features.customer import known_rows, months_before

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
    date, severity (float) and customer position ``code``. One compiled pass over the events
    (`features._event_kernels`)."""
    from features._event_kernels import event_walk

    at, start = _window(pd.Timestamp(as_of))
    counts, weight, since = event_walk(
        _type_codes(np.asarray(kind)), np.asarray(occurred).astype(_NS).view(np.int64),
        np.asarray(severity, dtype=np.float64), np.asarray(code, dtype=np.int64), n, at, start,
        _MEMBER, _SINCE,
    )  # fmt: skip
    out = {f"{name}_12m": counts[k] for k, name in enumerate(KINDS)}
    out["event_severity_12m"] = weight
    out |= {f"days_since_{name}": since[s] for s, name in enumerate(DAYS_SINCE)}
    return out


_NS = np.dtype("datetime64[ns]")
_TYPES = np.array(sorted({t for types in KINDS.values() for t in types}))
_MEMBER = np.array([[t in types for types in KINDS.values()] for t in _TYPES])
_SINCE = np.array([list(KINDS).index(kind) for kind in DAYS_SINCE.values()], dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _window(as_of: pd.Timestamp) -> tuple[int, int]:
    """``as_of`` and the window's first day, in nanoseconds (as-of dates repeat: kept)."""
    at, start = (int(np.datetime64(day, "ns").astype(np.int64))
                 for day in (as_of, months_before(as_of, WINDOW_MONTHS)))  # fmt: skip
    return at, start


def _type_codes(kind: np.ndarray) -> np.ndarray:
    """Each event type's row of `_MEMBER`, -1 where no kind counts it."""
    kind = kind.astype(str)
    at = np.searchsorted(_TYPES, kind).clip(max=len(_TYPES) - 1)
    return np.where(_TYPES[at] == kind, at, -1).astype(np.int64)
