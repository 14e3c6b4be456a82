"""Prefect flows: the main job wires the tasks of ``pipelines.tasks`` and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from prefect import flow

from pipelines.settings import Settings
from pipelines.tasks import (
    BookSummary,
    ScoredRun,
    SnapshotPlan,
    build_snapshots_task,
    generate_book_task,
    promote_task,
    score_and_decide_task,
    train_task,
    validate_book_task,
)


@dataclass
class MainSummary:
    """Everything `creditrisk run` reports at the end."""

    book: BookSummary
    training_snapshots: pd.DataFrame
    n_features: int
    training: object
    tracked: object
    decision: object
    runs: list[ScoredRun] = field(default_factory=list)


@flow(name="creditrisk-main", log_prints=False)
def main_flow(
    settings: Settings,
    customers: int = 20_000,
    months: int = 48,
    seed: int = 42,
    start: str = "2021-01-01",
    trained_by: str = "creditrisk-run",
    approver: str = "demo-approver",
    gates: object | None = None,
) -> MainSummary:
    """Generate and validate a book, build snapshots, train and promote, then score and decide."""
    book_dir = generate_book_task(settings.book_dir, customers, months, seed, start)
    tables, book = validate_book_task(
        book_dir, settings.rejects_dir / "rejects.csv", settings.max_reject_rate
    )
    plan = SnapshotPlan.for_book(book.observed_until, pd.Timestamp(start), settings.horizon_months)
    training, training_summary = build_snapshots_task(
        tables, plan.training, settings.horizon_months, settings.snapshots_dir / "training.parquet"
    )
    scoring, _ = build_snapshots_task(
        tables, plan.scoring, settings.horizon_months, settings.snapshots_dir / "scoring.parquet"
    )
    result, tracked = train_task(settings.snapshots_dir / "training.parquet", trained_by, settings)
    decision = promote_task(
        tracked.model_name, tracked.version, approver, settings.tracking_uri, gates
    )
    champion = decision.champion
    runs = (
        score_and_decide_task(
            scoring,
            tracked.model_name,
            champion,
            settings.tracking_uri,
            settings.results_url,
            trained_by,
        )
        if champion is not None
        else []
    )
    n_features = training.shape[1] - 3
    return MainSummary(book, training_summary, n_features, result, tracked, decision, runs)
