"""Use case: score and decide one as-of date (PD, grade, policy, reasons, warnings), stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from features.snapshots import LABEL, TIME
from models.master_scale import MasterScale
from models.registry import load_scorer
from models.scorer import CreditScorer
from models.tracking import connect
from pipelines.decisions.early_warning import WarningRules, evaluate_signals, load_rules, roll_up
from pipelines.decisions.policy import CreditPolicy, decide, load_policy, policy_summary
from pipelines.errors import as_typed
from pipelines.store.db import open_store
from pipelines.store.queries import read_score_history
from pipelines.store.runs import RunWritten, write_scored_run


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
    """One scored as-of date: the stored run, its grade counts, policy summary and warnings."""

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


def score_snapshot(scorer: CreditScorer, snapshot: pd.DataFrame) -> pd.DataFrame:
    """Snapshot features with the scorer's pd, score, grade and reasons beside them."""
    features = snapshot.drop(columns=[LABEL], errors="ignore").reset_index(drop=True)
    scores = scorer.score_frame(features)
    return pd.concat([features, scores.drop(columns=["customer_id"])], axis=1)


def score_and_decide(
    snapshot: pd.DataFrame,
    scorer: CreditScorer,
    engine: Engine,
    request: ScoringRequest,
) -> ScoringOutcome:
    """One as-of date: score, decide, warn against the stored history, write in one transaction."""
    as_of = pd.Timestamp(snapshot[TIME].iloc[0])
    config = request.config
    scored = score_snapshot(scorer, snapshot)
    decisions = decide(scored, config.policy)
    history = read_score_history(engine, request.model_name, before=as_of, months=12)
    signals = evaluate_signals(scored, history, config.rules, config.scale)
    warnings = roll_up(signals, config.rules, population=scored)
    written = write_scored_run(
        engine,
        scored,
        decisions,
        warnings,
        request.model_name,
        request.model_version,
        as_of,
        request.user,
    )
    return ScoringOutcome(
        as_of=as_of,
        written=written,
        grades=scored["grade"].value_counts(),
        policy=policy_summary(decisions, scored["grade"]),
    )


def score_dates(snapshots: pd.DataFrame, request: ScoringRequest) -> list[ScoringOutcome]:
    """Score every as-of date of ``snapshots`` in order, the scorer loaded once for all."""
    with as_typed():
        scorer = load_scorer(
            connect(request.tracking_uri), request.model_name, request.model_version
        )
        engine = open_store(request.results_url)
        try:
            return [
                score_and_decide(snapshot, scorer, engine, request)
                for _, snapshot in snapshots.groupby(TIME, sort=True)
            ]
        finally:
            engine.dispose()
