"""Prefect tasks of the main job: each calls one use case, so a failed task can be retried."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from models.registry import Decision, Gates
from pipelines.decisions.backtest import Backtest
from pipelines.errors import BadInput
from pipelines.settings import Settings
from pipelines.store.runs import ScoredDate
from pipelines.usecases import book, promotion, scoring, snapshots, training, warning_backtest
from pipelines.usecases.main_job import preflight


@task(cache_policy=NONE, name="preflight")
def preflight_task(settings: Settings) -> None:
    """The folders, the results store and MLflow answer before any work starts."""
    preflight(settings)


@task(cache_policy=NONE, name="generate-book")
def generate_book_task(request: book.GenerateRequest, folder: Path) -> Path:
    """Generate the synthetic customer book and write it as Parquet."""
    book.generate_book(request, folder)
    return folder


@task(cache_policy=NONE, name="validate-book")
def validate_book_task(
    folder: Path, rejects_path: Path, max_reject_rate: float
) -> book.BookValidated:
    """Validate the book against the contract; quarantine rejects; refuse above the threshold."""
    return book.validate_book(folder, max_reject_rate, rejects_path)


@task(cache_policy=NONE, name="build-snapshots")
def build_snapshots_task(
    tables: dict[str, pd.DataFrame],
    dates: list[pd.Timestamp],
    horizon: int,
    path: Path,
    with_defaulted: bool = False,
) -> snapshots.SnapshotsBuilt:
    """Point-in-time features and labels for ``dates``, written to ``path`` (with the customers
    in default for scoring)."""
    return snapshots.build_and_write_snapshots(
        tables, dates, horizon, path, with_defaulted=with_defaulted
    )


@task(cache_policy=NONE, name="train-model")
def train_task(request: training.TrainRequest, settings: Settings) -> training.Trained:
    """Train LightGBM and the scorecard, log to MLflow, register a challenger."""
    return training.train_and_register(request, settings)


@task(cache_policy=NONE, name="review-promotion")
def review_promotion_task(
    tracking_uri: str, model: str, version: str, approver: str, gates: Gates | None
) -> Decision:
    """Whether ``version`` may become champion (gates, champion, four eyes); changes nothing."""
    return promotion.review_promotion(tracking_uri, model, version, approver, gates)


@task(cache_policy=NONE, name="apply-promotion")
def apply_promotion_task(tracking_uri: str, decision: Decision) -> Decision:
    """Move `champion` for a promotion; record the decision either way."""
    return promotion.apply_promotion(tracking_uri, decision)


@task(cache_policy=NONE, name="score-and-decide")
def score_task(frame: pd.DataFrame, request: scoring.ScoringRequest) -> list[ScoredDate]:
    """Score, decide and warn each as-of date of ``frame``; nothing is stored yet."""
    return scoring.compute_dates(frame, request)


@task(cache_policy=NONE, name="stage-runs")
def stage_task(dates: list[ScoredDate], request: scoring.ScoringRequest) -> None:
    """Write every scored date as a pending run of the job, seen by no reader yet."""
    scoring.stage_dates(dates, request)


@task(cache_policy=NONE, name="publish-runs")
def publish_task(
    dates: list[ScoredDate], request: scoring.ScoringRequest
) -> list[scoring.ScoringOutcome]:
    """Make the job's pending runs current in one transaction."""
    return scoring.publish_dates(dates, request)


@task(cache_policy=NONE, name="backtest-warnings")
def backtest_task(
    request: warning_backtest.BacktestRequest, config: scoring.DecisionConfig
) -> Backtest | str:
    """The out-of-time backtest of the warning rules with the trained model, or why there is
    none (no matured date after its training window)."""
    try:
        return warning_backtest.backtest_model(request, config.rules, config.scale)
    except BadInput as exc:
        return exc.reason
