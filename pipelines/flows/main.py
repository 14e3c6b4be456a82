"""The main job as a Prefect flow: it wires the tasks of `pipelines.flows.tasks`, nothing else.

Promotion and the scoring it triggers are one unit as users see it: the candidate scores every
date and stages the runs (pending: no reader shows them), then the alias moves, then one
transaction makes the runs current. A job that stops in between leaves pending runs that
`pipelines.flows.guard` settles: published when their version is the champion, else discarded.
"""

from __future__ import annotations

import pandas as pd
from prefect import flow

from pipelines.failpoints import failpoint
from pipelines.flows.tasks import (
    apply_promotion_task,
    backtest_task,
    build_snapshots_task,
    generate_book_task,
    preflight_task,
    publish_task,
    review_promotion_task,
    score_task,
    stage_task,
    train_task,
    validate_book_task,
)
from pipelines.settings import Settings
from pipelines.usecases.main_job import MainJobRequest, MainJobResult
from pipelines.usecases.scoring import DecisionConfig, ScoringRequest
from pipelines.usecases.snapshots import SnapshotPlan
from pipelines.usecases.training import TrainRequest
from pipelines.usecases.warning_backtest import BacktestRequest


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
        book.tables,
        plan.scoring,
        horizon,
        settings.snapshots_dir / "scoring.parquet",
        with_defaulted=True,
    )
    train = TrainRequest(
        snapshots=training.path, trained_by=request.trained_by, job_id=request.job_id
    )
    trained = train_task(train, settings)
    failpoint("after-training")
    tracked = trained.tracked
    decision = review_promotion_task(
        settings.tracking_uri, tracked.model_name, tracked.version, request.approver, request.gates
    )
    scoring = ScoringRequest(
        tracked.model_name,
        decision.champion or "",
        settings.tracking_uri,
        settings.results_url,
        request.trained_by,
        config,
        request.job_id,
    )
    dates = score_task(to_score.frame, scoring) if decision.champion else []
    if dates:
        stage_task(dates, scoring)
    decision = apply_promotion_task(settings.tracking_uri, decision)
    failpoint("after-promotion")
    runs = publish_task(dates, scoring) if dates else []
    backtest = backtest_task(
        BacktestRequest(
            tracked.model_name,
            settings.tracking_uri,
            training.path,
            settings.book_dir,
            version=tracked.version,
        ),
        config,
    )
    return MainJobResult(
        book, training.summary, training.n_features, trained, decision, runs, backtest
    )
