"""Feature snapshots: features plus the default label, one row per (customer_id, as_of)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from features.build import ID, TIME, BookContext, book_context, build_features
from features.labels import (
    LABEL,
    build_labels,
    default_date_of,
    default_dates,
    defaulted_population,
    observed_until,
)

__all__ = [
    "DEFAULTED_ON",
    "ID",
    "LABEL",
    "TIME",
    "as_of_range",
    "build_snapshot",
    "build_snapshots",
]
DEFAULTED_ON = "defaulted_on"


def build_snapshot(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    horizon_months: int = 12,
    context: BookContext | None = None,
    dates: pd.Series | None = None,
    observed: pd.Timestamp | None = None,
    with_defaulted: bool = False,
) -> pd.DataFrame:
    """Features and ``default_flag`` of the performing customers at one as-of date.

    ``with_defaulted`` (for scoring) adds the customers in default at that date, after the
    performing ones, with their ``defaulted_on`` date (null for the others) and no label.
    """
    as_of = pd.Timestamp(as_of)
    dates = default_dates(tables) if dates is None else dates
    context = book_context(tables, as_of, dates) if context is None else context
    features = build_features(tables, as_of, context, dates)
    labels = build_labels(tables, as_of, horizon_months, observed, dates)
    flag = labels[LABEL].to_numpy()
    if not np.array_equal(labels[ID].to_numpy(), features[ID].to_numpy()):
        flag = features[ID].map(labels.set_index(ID)[LABEL]).to_numpy(dtype=float)
    snapshot = features.assign(**{LABEL: flag})
    if not with_defaulted:
        return snapshot
    never = pd.Series(pd.NaT, index=snapshot.index, dtype="datetime64[ns]")
    snapshot = snapshot.assign(**{DEFAULTED_ON: never})
    customers = defaulted_population(tables["customers"], as_of, dates)
    if customers.empty:  # one customer scored online, say: no second feature build
        return snapshot
    defaulted = _in_default(tables, customers, as_of, context, dates)
    return pd.concat([snapshot, defaulted], ignore_index=True)


def _in_default(
    tables: dict[str, pd.DataFrame],
    customers: pd.DataFrame,
    as_of: pd.Timestamp,
    context: BookContext,
    dates: pd.Series,
) -> pd.DataFrame:
    """Features of ``customers`` (those in default at ``as_of``), their default date, no label."""
    # build_features keeps the customers not in default: given no default dates, all of these
    features = build_features({**tables, "customers": customers}, as_of, context, dates.iloc[:0])
    since = default_date_of(features[ID], dates)
    return features.assign(**{LABEL: np.nan, DEFAULTED_ON: since})


def build_snapshots(
    tables: dict[str, pd.DataFrame],
    as_of_dates: Iterable[pd.Timestamp | str],
    horizon_months: int = 12,
    progress: Callable[[pd.Timestamp, pd.DataFrame], None] | None = None,
    with_defaulted: bool = False,
) -> pd.DataFrame:
    """Snapshots for several as-of dates, stacked; ``progress`` is called after each date.

    ``with_defaulted``: see `build_snapshot` (scoring snapshots; never for training).
    """
    dates = default_dates(tables)
    until = observed_until(tables)
    frames = []
    for as_of in sorted(pd.Timestamp(d) for d in as_of_dates):
        context = book_context(tables, as_of, dates)
        frame = build_snapshot(tables, as_of, horizon_months, context, dates, until, with_defaulted)
        frames.append(frame)
        if progress is not None:
            progress(as_of, frame)
    if not frames:
        raise ValueError("no as-of dates given: pass at least one")
    return pd.concat(frames, ignore_index=True)


def as_of_range(start: str | pd.Timestamp, end: str | pd.Timestamp, every_months: int) -> list:
    """As-of dates from ``start`` to ``end`` inclusive, every ``every_months`` months."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if every_months < 1 or end < start:
        raise ValueError("need every_months >= 1 and end on or after start")
    out, k = [], 0
    while (date := start + pd.DateOffset(months=k * every_months)) <= end:
        out.append(date)
        k += 1
    return out


def snapshot_summary(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Rows, labelled rows and default rate per as-of date."""
    grouped = snapshots.groupby(TIME)[LABEL]
    return pd.DataFrame(
        {"rows": grouped.size(), "labelled": grouped.count(), "default_rate": grouped.mean()}
    )
