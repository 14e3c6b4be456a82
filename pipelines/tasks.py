"""Prefect tasks of the main job: each wraps one stage and returns what the next stage needs.

Stages stay in their packages (features, models, pipelines.policy, ...); a task only does the I/O
around one of them, so a failed task can be retried and a rerun starts clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from features.io import read_book, write_book, write_rejects, write_snapshots
from features.labels import observed_until
from features.schemas import enforce_reject_rate, validate_tables
from features.snapshots import LABEL, TIME, as_of_range, build_snapshots, snapshot_summary
from features.synthetic import generate_book


@dataclass
class BookSummary:
    """What the validation stage saw: rows in, accepted and rejected per table."""

    customers: int
    counts: pd.DataFrame
    rejects_path: Path
    observed_until: pd.Timestamp


@dataclass
class SnapshotPlan:
    """As-of dates for training (label observed) and for scoring (the latest quarters)."""

    training: list[pd.Timestamp]
    scoring: list[pd.Timestamp]

    @classmethod
    def for_book(
        cls, observed: pd.Timestamp, first_month: pd.Timestamp, horizon: int
    ) -> SnapshotPlan:
        """Quarterly training dates from 15 months into the book to the last matured date."""
        last_matured = observed - pd.DateOffset(months=horizon)
        first = first_month + pd.DateOffset(months=15)
        training = as_of_range(first, last_matured, 3)
        scoring = [observed - pd.DateOffset(months=3), observed]
        return cls(training=training, scoring=scoring)


@dataclass
class ScoredRun:
    """One scoring run's outputs, as written to the results store."""

    as_of: pd.Timestamp
    run_id: int
    grades: pd.Series
    policy: pd.DataFrame
    warnings: dict[str, int] = field(default_factory=dict)


@task(cache_policy=NONE, name="generate-book")
def generate_book_task(folder: Path, customers: int, months: int, seed: int, start: str) -> Path:
    """Generate the synthetic customer book and write it as Parquet."""
    tables = generate_book(n_customers=customers, months=months, start=start, seed=seed)
    write_book(tables, folder)
    return folder


@task(cache_policy=NONE, name="validate-book")
def validate_book_task(
    folder: Path, rejects_path: Path, max_reject_rate: float
) -> tuple[dict[str, pd.DataFrame], BookSummary]:
    """Validate the book against the contract; quarantine rejects; fail above the threshold."""
    result = validate_tables(read_book(folder), max_reject_rate=max_reject_rate)
    write_rejects(result.rejects, rejects_path)
    enforce_reject_rate(result, max_reject_rate, str(rejects_path))
    summary = BookSummary(
        customers=len(result.accepted["customers"]),
        counts=result.counts,
        rejects_path=rejects_path,
        observed_until=observed_until(result.accepted),
    )
    return result.accepted, summary


@task(cache_policy=NONE, name="build-snapshots")
def build_snapshots_task(
    tables: dict[str, pd.DataFrame], dates: list[pd.Timestamp], horizon: int, path: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Point-in-time features and labels for ``dates``, written to ``path``; returns the summary."""
    snapshots = build_snapshots(tables, dates, horizon)
    metadata = {"as_of": [f"{d:%Y-%m-%d}" for d in dates], "horizon_months": horizon}
    write_snapshots(snapshots, path, metadata)
    return snapshots, snapshot_summary(snapshots)


@task(cache_policy=NONE, name="train-model")
def train_task(snapshots_path: Path, trained_by: str, settings) -> tuple:
    """Train LightGBM and the scorecard on the snapshots, log to MLflow, register a challenger."""
    from pipelines.cli_models import train_and_register

    return train_and_register(snapshots=snapshots_path, trained_by=trained_by, settings=settings)


@task(cache_policy=NONE, name="promote-model")
def promote_task(model_name: str, version: str, approver: str, tracking_uri: str, gates=None):
    """Ask the registry to promote ``version`` (gates, champion comparison, four eyes)."""
    from models.registry import promote
    from models.tracking import connect

    return promote(connect(tracking_uri), model_name, version, approver, gates)


@task(cache_policy=NONE, name="score-and-decide")
def score_and_decide_task(
    snapshots: pd.DataFrame,
    model_name: str,
    model_version: str,
    tracking_uri: str,
    results_url: str,
    user: str,
) -> list[ScoredRun]:
    """Score each as-of date of ``snapshots`` with the model version, decide policy, raise
    warnings and store each date in one go (one ScoredRun per date, in order). The scorer,
    policy and rules are loaded once for all dates."""
    from models.registry import load_scorer
    from models.tracking import connect
    from pipelines.early_warning import load_rules
    from pipelines.policy import load_policy
    from pipelines.store.db import open_store

    scorer = load_scorer(connect(tracking_uri), model_name, model_version)
    policy, rules = load_policy(), load_rules()
    engine = open_store(results_url)
    try:
        runs = [
            _score_and_decide(
                snapshot, scorer, policy, rules, engine, model_name, model_version, user
            )
            for _, snapshot in snapshots.groupby(TIME, sort=True)
        ]
    finally:
        engine.dispose()
    return runs


def _score_and_decide(
    snapshot, scorer, policy, rules, engine, model_name, model_version, user
) -> ScoredRun:
    """One as-of date: score, decide, warn against the stored history, write atomically."""
    from pipelines.batch import write_scored_run
    from pipelines.early_warning import evaluate_signals, roll_up
    from pipelines.policy import decide, policy_summary
    from pipelines.store.queries import read_score_history

    as_of = pd.Timestamp(snapshot[TIME].iloc[0])
    scored = score_snapshot(scorer, snapshot)
    decisions = decide(scored, policy)
    history = read_score_history(engine, model_name, before=as_of, months=12)
    warnings = roll_up(evaluate_signals(scored, history, rules), rules, population=scored)
    written = write_scored_run(
        engine, scored, decisions, warnings, model_name, model_version, as_of, user
    )
    return ScoredRun(
        as_of=as_of,
        run_id=written.run_id,
        grades=scored["grade"].value_counts(),
        policy=policy_summary(decisions, scored["grade"]),
        warnings=written.warnings,
    )


def score_snapshot(scorer, snapshot: pd.DataFrame) -> pd.DataFrame:
    """Snapshot features with the scorer's pd, score, grade and reasons beside them."""
    features = snapshot.drop(columns=[LABEL], errors="ignore").reset_index(drop=True)
    scores = scorer.score_frame(features)
    return pd.concat([features, scores.drop(columns=["customer_id"])], axis=1)
