"""Use case: score and decide one as-of date (PD, grade, policy, reasons, warnings), stored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from features.snapshots import LABEL, TIME
from models.master_scale import MasterScale
from models.registry import CHAMPION, alias_version, load_scorer
from models.scorer import CreditScorer
from models.tracking import connect
from pipelines.decisions.early_warning import WarningRules, evaluate_signals, load_rules, roll_up
from pipelines.decisions.policy import CreditPolicy, decide, load_policy, policy_summary
from pipelines.errors import as_typed
from pipelines.failpoints import failpoint
from pipelines.signals import deferred
from pipelines.store.db import open_store
from pipelines.store.queries import read_score_history
from pipelines.store.runs import (
    RunWritten,
    ScoredDate,
    discard_runs,
    pending_versions,
    publish_runs,
    write_scored_runs,
)


@dataclass(frozen=True)
class DecisionConfig:
    """The configuration a scoring run decides with, loaded at the edge and passed in."""

    policy: CreditPolicy
    rules: WarningRules
    scale: MasterScale

    @classmethod
    def load(
        cls, policy: Path | None = None, rules: Path | None = None, scale: Path | None = None
    ) -> DecisionConfig:
        """Read the master scale, credit policy and warning rules (the shipped ones by default)."""
        with as_typed():
            master_scale = MasterScale.load(scale)
            return cls(load_policy(policy, master_scale.grades), load_rules(rules), master_scale)


@dataclass(frozen=True)
class ScoringOutcome:
    """One stored as-of date: the run written, its grade counts, policy summary and warnings."""

    as_of: pd.Timestamp
    written: RunWritten
    grades: pd.Series
    policy: pd.DataFrame

    @property
    def run_id(self) -> int:
        return self.written.run_id

    @property
    def warnings(self) -> dict[str, int]:
        return self.written.warnings


@dataclass(frozen=True)
class ScoringRequest:
    """Which model version scores, where results go, and who runs it."""

    model_name: str
    model_version: str
    tracking_uri: str
    results_url: str
    user: str
    config: DecisionConfig = field(repr=False)
    job_id: str | None = None


HISTORY_COLUMNS = ["customer_id", "as_of", "pd", "grade"]
HISTORY_MONTHS = 12


def score_snapshot(scorer: CreditScorer, snapshot: pd.DataFrame) -> pd.DataFrame:
    """Snapshot features with the scorer's pd, score, grade and reasons beside them."""
    features = snapshot.drop(columns=[LABEL], errors="ignore").reset_index(drop=True)
    scores = scorer.score_frame(features)
    return pd.concat([features, scores.drop(columns=["customer_id"])], axis=1)


def decide_date(
    snapshot: pd.DataFrame, scorer: CreditScorer, history: pd.DataFrame, config: DecisionConfig
) -> ScoredDate:
    """One as-of date: score, decide the policy, raise warnings against the score history."""
    as_of = pd.Timestamp(snapshot[TIME].iloc[0])
    scored = score_snapshot(scorer, snapshot)
    decisions = decide(scored, config.policy)
    signals = evaluate_signals(scored, history, config.rules, config.scale)
    warnings = roll_up(signals, config.rules, population=scored)
    return ScoredDate(as_of.date(), scored, decisions, warnings)


def _history(stored: pd.DataFrame, done: list[ScoredDate], as_of: pd.Timestamp) -> pd.DataFrame:
    """Stored history with this batch's earlier dates in place of what they supersede."""
    start = as_of - pd.DateOffset(months=HISTORY_MONTHS)
    batch = [
        d.scored[HISTORY_COLUMNS].assign(as_of=pd.Timestamp(d.as_of))
        for d in done
        if start <= pd.Timestamp(d.as_of) < as_of
    ]
    replaced = stored["as_of"].isin([pd.Timestamp(d.as_of) for d in done])
    return pd.concat([stored[~replaced], *batch], ignore_index=True) if batch else stored


def decide_dates(
    snapshots: pd.DataFrame, scorer: CreditScorer, engine: Engine, request: ScoringRequest
) -> list[ScoredDate]:
    """Every as-of date of ``snapshots`` in order, each warned against the ones before it."""
    done: list[ScoredDate] = []
    for as_of, snapshot in snapshots.groupby(TIME, sort=True):
        stored = read_score_history(engine, request.model_name, before=as_of, months=HISTORY_MONTHS)
        history = _history(stored, done, pd.Timestamp(as_of))
        done.append(decide_date(snapshot, scorer, history, request.config))
        failpoint("after-first-date-scored")
    return done


def _outcomes(dates: list[ScoredDate], written: list[RunWritten]) -> list[ScoringOutcome]:
    by_date = {pd.Timestamp(d.as_of): d for d in dates}
    return [
        ScoringOutcome(
            as_of=pd.Timestamp(run.as_of),
            written=run,
            grades=by_date[pd.Timestamp(run.as_of)].scored["grade"].value_counts(),
            policy=policy_summary(
                by_date[pd.Timestamp(run.as_of)].decisions,
                by_date[pd.Timestamp(run.as_of)].scored["grade"],
            ),
        )
        for run in written
    ]


@contextmanager
def _store(results_url: str) -> Iterator[Engine]:
    with as_typed():
        engine = open_store(results_url)
        try:
            yield engine
        finally:
            engine.dispose()


def _write(dates: list[ScoredDate], request: ScoringRequest, publish: bool) -> list[RunWritten]:
    with _store(request.results_url) as engine, deferred():
        return write_scored_runs(
            engine,
            dates,
            request.model_name,
            request.model_version,
            request.user,
            job_id=request.job_id,
            publish=publish,
        )


def store_dates(dates: list[ScoredDate], request: ScoringRequest) -> list[ScoringOutcome]:
    """Write the dates' runs in one transaction; each becomes the current run of its date."""
    return _outcomes(dates, _write(dates, request, publish=True))


def stage_dates(dates: list[ScoredDate], request: ScoringRequest) -> None:
    """Write the dates' runs as pending runs of the request's job, seen by no reader yet."""
    _write(dates, request, publish=False)


def publish_dates(dates: list[ScoredDate], request: ScoringRequest) -> list[ScoringOutcome]:
    """Make the job's pending runs current, all in one transaction."""
    with _store(request.results_url) as engine:
        written = publish_runs(engine, request.job_id, request.user)
    return _outcomes(dates, written)


@dataclass(frozen=True)
class Settled:
    """What became of an unfinished job's pending runs."""

    published: list[int]
    discarded: list[int]


def settle_job(results_url: str, tracking_uri: str, job_id: str, user: str) -> Settled:
    """Finish an interrupted job's unit of promotion and scoring: its pending runs are published
    when their version is the champion now (the alias had moved), else discarded."""
    with _store(results_url) as engine:
        versions = pending_versions(engine, job_id)
        if not versions:
            return Settled([], [])
        client = connect(tracking_uri)
        if all(alias_version(client, name, CHAMPION) == version for name, version in versions):
            return Settled([run.run_id for run in publish_runs(engine, job_id, user)], [])
        return Settled([], discard_runs(engine, job_id))


def compute_dates(snapshots: pd.DataFrame, request: ScoringRequest) -> list[ScoredDate]:
    """Load the scorer and decide every date of ``snapshots``, storing nothing yet."""
    with as_typed():
        client = connect(request.tracking_uri)
        scorer = load_scorer(client, request.model_name, request.model_version)
    with _store(request.results_url) as engine:
        return decide_dates(snapshots, scorer, engine, request)


def score_dates(snapshots: pd.DataFrame, request: ScoringRequest) -> list[ScoringOutcome]:
    """Score, decide and store every as-of date of ``snapshots``: all dates or none."""
    return store_dates(compute_dates(snapshots, request), request)
