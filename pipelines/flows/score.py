"""The score flow: one or more as-of dates scored by the champion and decided, into the store.

A rerun is idempotent: a date whose current run already scored the same snapshot with the same
model version and configuration (the hashes the run row records) is neither scored nor written
again. In the main job the flow stages its runs instead (pending until the job publishes them,
see `pipelines.flows.main`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import flow

from features.labels import observed_until
from features.snapshots import TIME
from pipelines.flows.cluster import address_of, compute_partitioned, partitioned_builder
from pipelines.flows.tasks import (
    champion_task,
    current_runs_task,
    read_book_task,
    read_snapshots_task,
    score_task,
    scoring_snapshots_task,
    stage_task,
    store_task,
    validate_book_task,
)
from pipelines.settings import Settings, get_settings
from pipelines.store.runs import ScoredDate
from pipelines.usecases import Step, silent
from pipelines.usecases.scoring import DecisionConfig, ScoringOutcome, ScoringRequest
from pipelines.usecases.snapshots import scoring_snapshots


@dataclass(frozen=True)
class Scored:
    """What a score flow did: the runs written, the dates already current (with their run),
    and in the main job the dates staged for it to publish."""

    request: ScoringRequest
    runs: list[ScoringOutcome] = field(default_factory=list)
    current: dict[pd.Timestamp, int] = field(default_factory=dict)
    staged: list[ScoredDate] = field(default_factory=list)


def _snapshots(
    settings: Settings,
    book_dir: Path | None,
    as_of: list[pd.Timestamp],
    validate: bool,
    address: str | None,
    step: Step,
) -> pd.DataFrame:
    """The snapshots to score, built from the book (its last observed month by default)."""
    folder = book_dir or settings.book_dir
    step(f"reading the book {folder}")
    if validate:
        rejects = settings.rejects_dir / "rejects.csv"
        tables = validate_book_task(folder, rejects, settings.max_reject_rate).tables
    else:
        tables = read_book_task(folder)
    dates = as_of or [observed_until(tables)]
    step("building snapshots at " + ", ".join(f"{d:%Y-%m-%d}" for d in dates))
    if address is None:
        return scoring_snapshots_task(tables, dates, settings.horizon_months)
    return scoring_snapshots(tables, dates, settings.horizon_months, partitioned_builder(address))


@flow(name="score")
def score_flow(
    settings: Settings | None = None,
    as_of: list[date] | None = None,
    snapshots: Path | None = None,
    book_dir: Path | None = None,
    model_name: str | None = None,
    version: str | None = None,
    config: DecisionConfig | None = None,
    user: str = "creditrisk-score",
    validate_first: bool = True,
    stage_as: str | None = None,
    dask_address: str | None = None,
    step: Callable[[str], None] | None = None,
) -> Scored:
    """Score ``as_of`` (default: the book's last observed month) with the champion (or
    ``version``): PD, grade, policy, reasons and warnings, written to the store. Snapshots come
    from the book, or from a ``snapshots`` file; on the Dask cluster when an address is given.
    With ``stage_as`` (a job id) the runs are staged for that job to publish."""
    settings = settings or get_settings()
    step = step or silent
    model = model_name or settings.model_name
    config = config or DecisionConfig.load()
    address = address_of(dask_address, settings.dask_address)
    dates = [pd.Timestamp(d) for d in as_of or []]
    if version is None:
        step(f"finding the champion of {model}")
        version = champion_task(settings.tracking_uri, model)
    if snapshots is not None:
        frame = read_snapshots_task(snapshots, dates or None)
    else:
        frame = _snapshots(settings, book_dir, dates, validate_first, address, step)
    request = ScoringRequest(
        model, str(version), settings.tracking_uri, settings.results_url, user, config, stage_as
    )
    if stage_as is None:
        current = current_runs_task(frame, request)
        frame = frame[~pd.to_datetime(frame[TIME]).isin(list(current))]
        if frame.empty:
            return Scored(request, current=current)
    step(f"scoring {len(frame):,} customer-dates with {model} v{version}")
    scored = (
        score_task(frame, request)
        if address is None
        else compute_partitioned(frame, request, address)
    )
    if stage_as is not None:
        step("staging the runs")
        stage_task(scored, request)
        return Scored(request, staged=scored)
    step("writing the runs to the results store")
    runs, already = store_task(scored, request)
    return Scored(request, runs=runs, current={**current, **already})
