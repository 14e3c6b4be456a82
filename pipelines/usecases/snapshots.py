"""Use case: point-in-time feature and label snapshots of a validated book, written as Parquet."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from features.io import read_snapshots, write_snapshots
from features.labels import observed_until
from features.snapshots import TIME, as_of_range, build_snapshots, snapshot_summary
from pipelines.errors import BadInput, as_typed
from pipelines.usecases.book import BookValidated

FIRST_TRAINING_MONTH = 15


@dataclass(frozen=True)
class SnapshotsBuilt:
    """Snapshots of one or more as-of dates, where they were written and what they hold."""

    frame: pd.DataFrame
    path: Path
    summary: pd.DataFrame
    seconds: dict[pd.Timestamp, float] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.frame.shape[1] - 3


class SnapshotBuilder(Protocol):
    """`features.snapshots.build_snapshots`, or a partitioned equivalent (same frame)."""

    def __call__(
        self,
        tables: dict[str, pd.DataFrame],
        dates: list[pd.Timestamp],
        horizon_months: int,
        progress: Callable[[pd.Timestamp, pd.DataFrame], None] | None = None,
        with_defaulted: bool = False,
    ) -> pd.DataFrame: ...


@dataclass(frozen=True)
class FeaturesBuilt:
    """What the build-features flow made: the validated book (when it validated one) and the
    snapshots by name (``snapshots``, or the main job's ``training`` and ``scoring``)."""

    book: BookValidated | None
    snapshots: dict[str, SnapshotsBuilt]


@dataclass(frozen=True)
class SnapshotPlan:
    """As-of dates of the main job: training (label observed) and scoring (the last matured
    date, whose outcomes monitoring can backtest, and the latest two quarters)."""

    training: list[pd.Timestamp]
    scoring: list[pd.Timestamp]

    @classmethod
    def for_book(
        cls, observed: pd.Timestamp, first_month: pd.Timestamp, horizon: int
    ) -> SnapshotPlan:
        """Quarterly training dates from 15 months into the book to the last matured date;
        scoring at the last matured date and the latest two quarters."""
        last_matured = observed - pd.DateOffset(months=horizon)
        first = first_month + pd.DateOffset(months=FIRST_TRAINING_MONTH)
        if last_matured < first:
            raise BadInput(
                f"the book ends {observed:%Y-%m-%d}: no as-of date from {first:%Y-%m-%d} has a "
                f"matured {horizon}-month label",
                field="months",
                hint=f"generate at least {FIRST_TRAINING_MONTH + horizon + 3} months",
            )
        training = as_of_range(first, last_matured, 3)
        scoring = sorted({last_matured, observed - pd.DateOffset(months=3), observed})
        return cls(training=training, scoring=scoring)


def as_of_dates(
    dates: list[pd.Timestamp],
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    every: int | None,
) -> list[pd.Timestamp]:
    """As-of dates from explicit dates and/or a series ``start``..``end`` every ``every`` months."""
    found = [pd.Timestamp(d) for d in dates]
    if start is not None or end is not None or every is not None:
        if start is None or end is None:
            raise BadInput("a series of as-of dates needs both --from and --to", field="--from")
        if end < start:
            raise BadInput(
                f"--from {start:%Y-%m-%d} is after --to {end:%Y-%m-%d}",
                field="--from",
                hint="swap them",
            )
        found += as_of_range(start, end, every or 3)
    if not found:
        raise BadInput(
            "no as-of date given",
            field="--as-of",
            hint="give --as-of DATE, or --from DATE --to DATE [--every MONTHS]",
        )
    return sorted(set(found))


def check_dates_in_book(tables: dict[str, pd.DataFrame], dates: list[pd.Timestamp]) -> None:
    """Refuse as-of dates before the book's first repayment month or after it was observed."""
    months = pd.to_datetime(tables["repayments"]["month"])
    if months.empty:
        raise BadInput(
            "the repayments table is empty", source="repayments", hint="add repayment months"
        )
    first, last = months.min(), observed_until(tables)
    outside = [d for d in dates if d < first or d > last]
    if outside:
        shown = ", ".join(f"{d:%Y-%m-%d}" for d in outside[:5])
        raise BadInput(
            f"as-of date(s) {shown} outside the book, which runs from {first:%Y-%m-%d} to "
            f"{last:%Y-%m-%d}",
            field="--as-of",
            hint=f"choose dates from {first:%Y-%m-%d} to {last:%Y-%m-%d}",
        )


def build_and_write_snapshots(
    tables: dict[str, pd.DataFrame],
    dates: list[pd.Timestamp],
    horizon_months: int,
    path: Path,
    metadata: dict | None = None,
    progress: Callable[[pd.Timestamp], None] | None = None,
    with_defaulted: bool = False,
    build: SnapshotBuilder = build_snapshots,
) -> SnapshotsBuilt:
    """Features and labels of ``tables`` at each date, written atomically to ``path``; with
    ``with_defaulted`` (scoring) the customers in default too (see `build_snapshot`). ``build``
    may be a partitioned builder giving the same frame."""
    check_dates_in_book(tables, dates)
    seconds: dict[pd.Timestamp, float] = {}
    started = time.perf_counter()

    def done(as_of: pd.Timestamp, _frame: pd.DataFrame) -> None:
        nonlocal started
        seconds[as_of] = time.perf_counter() - started
        started = time.perf_counter()
        if progress is not None:
            progress(as_of)

    frame = build(tables, dates, horizon_months, progress=done, with_defaulted=with_defaulted)
    meta = {"as_of": [f"{d:%Y-%m-%d}" for d in dates], "horizon_months": horizon_months}
    with as_typed():
        write_snapshots(frame, path, {**meta, **(metadata or {})})
    return SnapshotsBuilt(frame, path, snapshot_summary(frame), seconds)


def scoring_snapshots(
    tables: dict[str, pd.DataFrame],
    dates: list[pd.Timestamp],
    horizon_months: int,
    build: SnapshotBuilder = build_snapshots,
) -> pd.DataFrame:
    """The snapshots a scoring run scores at ``dates`` (customers in default included), refusing
    dates outside the book; nothing is written (the run keeps what it scored)."""
    check_dates_in_book(tables, dates)
    return build(tables, dates, horizon_months, with_defaulted=True)


def read_scoring_snapshots(path: Path, dates: list[pd.Timestamp] | None = None) -> pd.DataFrame:
    """Snapshots from a Parquet file, only ``dates`` when given (each must be in the file)."""
    with as_typed():
        frame, _ = read_snapshots(path)
    if not dates:
        return frame
    held = set(pd.to_datetime(frame[TIME]).unique())
    missing = [d for d in dates if pd.Timestamp(d) not in held]
    if missing:
        shown = ", ".join(f"{pd.Timestamp(d):%Y-%m-%d}" for d in missing)
        kept = ", ".join(f"{d:%Y-%m-%d}" for d in sorted(held)[:6])
        raise BadInput(
            f"no snapshot at {shown} in the file, which holds {kept}",
            source=str(path),
            field="--as-of",
            hint="choose one of its dates, or score from the book (drop --snapshots)",
        )
    return frame[pd.to_datetime(frame[TIME]).isin([pd.Timestamp(d) for d in dates])]
