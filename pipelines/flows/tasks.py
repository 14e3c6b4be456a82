"""Prefect tasks: each calls one use case step, so a failed task can be retried.

Tasks that talk to the results store or MLflow retry when it was briefly away (`Unavailable`),
after `RETRY_DELAYS` seconds; the retries show in the Prefect UI as the task run's
AwaitingRetry and Retrying states. Bad input, a refusal or a bug fails at once.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State, TaskRun
from prefect.results import ResultRecord

from models.registry import Decision, Gates
from pipelines.decisions.backtest import Backtest
from pipelines.errors import BadInput, Unavailable
from pipelines.settings import Settings
from pipelines.store.runs import ScoredDate
from pipelines.usecases import book, promotion, scoring, snapshots, training, warning_backtest
from pipelines.usecases.main_job import preflight

RETRY_DELAYS = [2, 8]


def transient(_task, _run: TaskRun, state: State) -> bool:
    """Retry only a system briefly away (`Unavailable`): the store, MLflow, the disk."""
    data = state.data.result if isinstance(state.data, ResultRecord) else state.data
    return isinstance(data, Unavailable)


plain = partial(task, cache_policy=NONE)
retried = partial(
    task,
    cache_policy=NONE,
    retries=len(RETRY_DELAYS),
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=transient,
)


@retried(name="preflight")
def preflight_task(settings: Settings) -> None:
    """The folders, the results store and MLflow answer before any work starts."""
    preflight(settings)


@plain(name="generate-book")
def generate_book_task(request: book.GenerateRequest, folder: Path) -> Path:
    """Generate the synthetic customer book and write it as Parquet."""
    book.generate_book(request, folder)
    return folder


@retried(name="validate-book")
def validate_book_task(
    folder: Path, rejects_path: Path, max_reject_rate: float
) -> book.BookValidated:
    """Validate the book against the contract; quarantine rejects; refuse above the threshold."""
    return book.validate_book(folder, max_reject_rate, rejects_path)


@retried(name="read-book")
def read_book_task(folder: Path) -> dict[str, pd.DataFrame]:
    """Read a typed book without validating it (Parquet written by generate or validate)."""
    return book.read_typed_book(folder)


@retried(name="build-snapshots")
def build_snapshots_task(
    tables: dict[str, pd.DataFrame],
    dates: list[pd.Timestamp],
    horizon: int,
    path: Path,
    with_defaulted: bool = False,
    metadata: dict | None = None,
    progress=None,
) -> snapshots.SnapshotsBuilt:
    """Point-in-time features and labels for ``dates``, written to ``path`` (with the customers
    in default for scoring)."""
    return snapshots.build_and_write_snapshots(
        tables, dates, horizon, path, metadata, progress, with_defaulted=with_defaulted
    )


@plain(name="scoring-snapshots")
def scoring_snapshots_task(
    tables: dict[str, pd.DataFrame], dates: list[pd.Timestamp], horizon: int
) -> pd.DataFrame:
    """The snapshots to score at ``dates``, customers in default included."""
    return snapshots.scoring_snapshots(tables, dates, horizon)


@retried(name="read-snapshots")
def read_snapshots_task(path: Path, dates: list[pd.Timestamp] | None) -> pd.DataFrame:
    """Scoring snapshots from a Parquet file (only ``dates`` when given)."""
    return snapshots.read_scoring_snapshots(path, dates)


@plain(name="train-model")
def train_task(request: training.TrainRequest, settings: Settings) -> training.Trained:
    """Train LightGBM and the scorecard, log to MLflow, register a challenger (not retried: a
    retry would register another version)."""
    return training.train_and_register(request, settings)


@retried(name="review-promotion")
def review_promotion_task(
    tracking_uri: str, model: str, version: str, approver: str, gates: Gates | None
) -> Decision:
    """Whether ``version`` may become champion (gates, champion, four eyes); changes nothing."""
    return promotion.review_promotion(tracking_uri, model, version, approver, gates)


@retried(name="apply-promotion")
def apply_promotion_task(tracking_uri: str, decision: Decision) -> Decision:
    """Move `champion` for a promotion; record the decision either way."""
    return promotion.apply_promotion(tracking_uri, decision)


@retried(name="champion-version")
def champion_task(tracking_uri: str, model_name: str) -> str:
    """The version the `champion` alias points at."""
    return scoring.champion_version(tracking_uri, model_name)


@retried(name="current-runs")
def current_runs_task(
    frame: pd.DataFrame, request: scoring.ScoringRequest
) -> dict[pd.Timestamp, int]:
    """The dates whose current run already scored exactly this snapshot with this model."""
    return scoring.current_runs(frame, request)


@retried(name="score-and-decide")
def score_task(frame: pd.DataFrame, request: scoring.ScoringRequest) -> list[ScoredDate]:
    """Score, decide and warn each as-of date of ``frame``; nothing is stored yet."""
    return scoring.compute_dates(frame, request)


@retried(name="store-runs")
def store_task(
    dates: list[ScoredDate], request: scoring.ScoringRequest
) -> tuple[list[scoring.ScoringOutcome], dict[pd.Timestamp, int]]:
    """Write the dates' runs in one transaction, each the current run of its date; dates
    already current with the same model, configuration and snapshot are left as they are."""
    return scoring.store_new_dates(dates, request)


@retried(name="stage-runs")
def stage_task(dates: list[ScoredDate], request: scoring.ScoringRequest) -> None:
    """Write every scored date as a pending run of the job, seen by no reader yet."""
    scoring.stage_dates(dates, request)


@retried(name="publish-runs")
def publish_task(
    dates: list[ScoredDate], request: scoring.ScoringRequest
) -> list[scoring.ScoringOutcome]:
    """Make the job's pending runs current in one transaction."""
    return scoring.publish_dates(dates, request)


@retried(name="backtest-warnings")
def backtest_task(
    request: warning_backtest.BacktestRequest, config: scoring.DecisionConfig
) -> Backtest | str:
    """The out-of-time backtest of the warning rules with the trained model, or why there is
    none (no matured date after its training window)."""
    try:
        return warning_backtest.backtest_model(request, config.rules, config.scale)
    except BadInput as exc:
        return exc.reason
