"""The main job as a Prefect flow: it wires the tasks of `pipelines.flows.tasks`, nothing else."""

from __future__ import annotations

import pandas as pd
from prefect import flow

from pipelines.flows.tasks import (
    build_snapshots_task,
    generate_book_task,
    preflight_task,
    promote_task,
    score_task,
    train_task,
    validate_book_task,
)
from pipelines.settings import Settings
from pipelines.usecases.main_job import MainJobRequest, MainJobResult
from pipelines.usecases.scoring import DecisionConfig, ScoringRequest
from pipelines.usecases.snapshots import SnapshotPlan
from pipelines.usecases.training import TrainRequest


@flow(name="creditrisk-main", log_prints=False)
def main_flow(settings: Settings, request: MainJobRequest, config: DecisionConfig) -> MainJobResult:
    """Generate and validate a book, build snapshots, train and promote, then score and decide."""
    preflight_task(settings)
    folder = generate_book_task(request.book, settings.book_dir)
    book = validate_book_task(
        folder, settings.rejects_dir / "rejects.csv", settings.max_reject_rate
    )
    horizon = settings.horizon_months
    plan = SnapshotPlan.for_book(book.observed_until, pd.Timestamp(request.book.start), horizon)
    training = build_snapshots_task(
        book.tables, plan.training, horizon, settings.snapshots_dir / "training.parquet"
    )
    to_score = build_snapshots_task(
        book.tables, plan.scoring, horizon, settings.snapshots_dir / "scoring.parquet"
    )
    trained = train_task(
        TrainRequest(snapshots=training.path, trained_by=request.trained_by), settings
    )
    tracked = trained.tracked
    decision = promote_task(
        settings.tracking_uri, tracked.model_name, tracked.version, request.approver, request.gates
    )
    runs = []
    if decision.champion is not None:
        scoring = ScoringRequest(
            tracked.model_name,
            decision.champion,
            settings.tracking_uri,
            settings.results_url,
            request.trained_by,
            config,
        )
        runs = score_task(to_score.frame, scoring)
    return MainJobResult(book, training.summary, training.n_features, trained, decision, runs)
