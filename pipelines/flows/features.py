"""The build-features flow: validate a book and build its point-in-time snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import flow

from features.labels import observed_until
from pipelines.errors import BadInput
from pipelines.flows.cluster import address_of, partitioned_builder
from pipelines.flows.tasks import build_snapshots_task, read_book_task, validate_book_task
from pipelines.settings import Settings, get_settings
from pipelines.usecases.snapshots import FeaturesBuilt, SnapshotPlan, build_and_write_snapshots

DateProgress = Callable[[pd.Timestamp], None]


@flow(name="build-features")
def build_features_flow(
    settings: Settings | None = None,
    book_dir: Path | None = None,
    as_of: list[date] | None = None,
    out: Path | None = None,
    horizon: int | None = None,
    validate_first: bool = True,
    plan_from: date | None = None,
    plan: bool = False,
    dask_address: str | None = None,
    progress: DateProgress | None = None,
) -> FeaturesBuilt:
    """Snapshots of the book at ``as_of`` written to ``out`` (``snapshots``), or with ``plan``
    the main job's ``training`` and ``scoring`` snapshots (`SnapshotPlan`, from ``plan_from`` or
    the book's first month); on the Dask cluster when an address is given."""
    settings = settings or get_settings()
    folder = book_dir or settings.book_dir
    horizon = horizon or settings.horizon_months
    if validate_first:
        rejects = settings.rejects_dir / "rejects.csv"
        book = validate_book_task(folder, rejects, settings.max_reject_rate)
        tables = book.tables
    else:
        book, tables = None, read_book_task(folder)
    if plan or plan_from is not None:
        first = pd.Timestamp(plan_from or pd.to_datetime(tables["repayments"]["month"]).min())
        dates = SnapshotPlan.for_book(observed_until(tables), first, horizon)
        targets = {
            "training": (dates.training, settings.snapshots_dir / "training.parquet", False),
            "scoring": (dates.scoring, settings.snapshots_dir / "scoring.parquet", True),
        }
    else:
        path = out or settings.snapshots_dir / "snapshots.parquet"
        if not as_of:
            raise BadInput("no as-of date given", field="--as-of", hint="give --as-of DATE")
        targets = {"snapshots": ([pd.Timestamp(d) for d in as_of], path, False)}
    address = address_of(dask_address, settings.dask_address)
    built = {}
    for name, (dates, path, with_defaulted) in targets.items():
        metadata = {"source": str(folder)}
        if address is None:
            built[name] = build_snapshots_task(
                tables, dates, horizon, path, with_defaulted, metadata, progress
            )
        else:  # a flow of its own on the cluster, one task per customer partition
            built[name] = build_and_write_snapshots(
                tables, dates, horizon, path, metadata, progress, with_defaulted,
                build=partitioned_builder(address),
            )  # fmt: skip
    return FeaturesBuilt(book, built)
