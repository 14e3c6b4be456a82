"""The main job's request, result and preflight: what `creditrisk run` asks and reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pandas as pd

from models.registry import Decision, Gates
from pipelines.decisions.backtest import Backtest
from pipelines.settings import Settings
from pipelines.usecases.book import BookValidated, GenerateRequest
from pipelines.usecases.preflight import check_store, check_tracking, check_writable
from pipelines.usecases.scoring import ScoringOutcome
from pipelines.usecases.training import Trained


@dataclass(frozen=True)
class MainJobRequest:
    """The synthetic book to generate, who trains and approves, the promotion gates, and the
    Dask cluster that builds features, trains and scores (None: this process)."""

    book: GenerateRequest = field(default_factory=GenerateRequest)
    trained_by: str = "creditrisk-run"
    approver: str = "demo-approver"
    gates: Gates | None = None
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    dask_address: str | None = None


@dataclass(frozen=True)
class MainJobResult:
    """Everything `creditrisk run` reports at the end."""

    book: BookValidated
    training_snapshots: pd.DataFrame
    n_features: int
    trained: Trained
    decision: Decision
    runs: list[ScoringOutcome] = field(default_factory=list)
    warning_backtest: Backtest | str = "not run"  # or why there is none
    monitoring: object | str = "not run"  # a usecases.monitoring.MonitoringReport, or why none


def preflight(settings: Settings) -> None:
    """Check, before any work, that the folders, the results store and MLflow can be used."""
    check_writable(settings.home)
    check_store(settings.results_url, create=True)
    check_tracking(settings.tracking_uri)
