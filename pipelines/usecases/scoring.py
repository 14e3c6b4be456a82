"""Use case: score and decide one as-of date (PD, grade, policy, reasons, warnings), stored."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from features.snapshots import DEFAULTED_ON, LABEL, TIME
from models.master_scale import DEFAULT_PATH as SCALE_PATH
from models.master_scale import MasterScale, MasterScaleError
from models.registry import CHAMPION, alias_version, load_scorer
from models.scaling import score_from_pd
from models.scorer import CreditScorer
from models.tracking import connect
from models.yaml_config import read_yaml_text
from pipelines.decisions.early_warning import DEFAULT_PATH as RULES_PATH
from pipelines.decisions.early_warning import (
    RulesError,
    WarningRules,
    evaluate_signals,
    parse_rules,
    roll_up,
)
from pipelines.decisions.policy import DEFAULT_PATH as POLICY_PATH
from pipelines.decisions.policy import (
    LIMIT_INPUTS,
    CreditPolicy,
    PolicyError,
    decide,
    inputs_text,
    parse_policy,
    policy_summary,
)
from pipelines.errors import BadInput, NotFound, as_typed
from pipelines.failpoints import failpoint
from pipelines.signals import deferred
from pipelines.store.db import open_store
from pipelines.store.lifecycle import COLLECTIONS, DEFAULTED
from pipelines.store.queries import list_runs, read_score_history
from pipelines.store.runs import (
    RunWritten,
    ScoredDate,
    discard_runs,
    pending_versions,
    publish_runs,
    write_scored_runs,
)
from pipelines.store.trace import RunTrace, snapshot_bytes, snapshot_frame

# kind of configuration (as recorded with runs) -> shipped file, error type, what it is
CONFIG_FILES = {
    "master_scale": (SCALE_PATH, MasterScaleError, "master scale"),
    "credit_policy": (POLICY_PATH, PolicyError, "policy"),
    "warning_rules": (RULES_PATH, RulesError, "rules"),
}


@dataclass(frozen=True)
class DecisionConfig:
    """The configuration a scoring run decides with, loaded at the edge and passed in, and the
    texts it was read from (kept with every run it decides, by content hash)."""

    policy: CreditPolicy
    rules: WarningRules
    scale: MasterScale
    texts: Mapping[str, str] = field(repr=False)

    @classmethod
    def load(
        cls, policy: Path | None = None, rules: Path | None = None, scale: Path | None = None
    ) -> DecisionConfig:
        """Read the master scale, credit policy and warning rules (the shipped ones by default)."""
        given = {"master_scale": scale, "credit_policy": policy, "warning_rules": rules}
        paths = {kind: Path(given[kind] or default) for kind, (default, *_) in CONFIG_FILES.items()}
        with as_typed():
            texts = {
                kind: read_yaml_text(paths[kind], error, what)
                for kind, (_, error, what) in CONFIG_FILES.items()
            }
        return cls.parse(texts, {kind: str(path) for kind, path in paths.items()})

    @classmethod
    def parse(
        cls, texts: Mapping[str, str], sources: Mapping[str, str] | None = None
    ) -> DecisionConfig:
        """Validate the three texts (by kind, as `load` reads them); errors name ``sources``."""
        where = {kind: f"<{kind}>" for kind in CONFIG_FILES} | dict(sources or {})
        with as_typed():
            scale = MasterScale.parse(texts["master_scale"], where["master_scale"])
            policy = parse_policy(texts["credit_policy"], scale.grades, where["credit_policy"])
            rules = parse_rules(texts["warning_rules"], where["warning_rules"])
        return cls(policy, rules, scale, dict(texts))


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


def in_default(frame: pd.DataFrame) -> np.ndarray:
    """Rows of customers in default (``defaulted_on`` set; see `build_snapshot`)."""
    if DEFAULTED_ON not in frame:
        return np.zeros(len(frame), dtype=bool)
    return frame[DEFAULTED_ON].notna().to_numpy()


def _since(frame: pd.DataFrame) -> list[str]:
    return pd.to_datetime(frame[DEFAULTED_ON]).dt.strftime("%Y-%m-%d").tolist()


def default_scores(defaulted: pd.DataFrame, scale: MasterScale) -> pd.DataFrame:
    """Customers in default: PD 1, the default grade, and as the one reason the default date."""
    reasons = [
        json.dumps([{"feature": DEFAULTED_ON, "text": f"in default since {day}", "value": day,
                     "contribution": None}])
        for day in _since(defaulted)
    ]  # fmt: skip
    return pd.DataFrame(
        {
            "pd": 1.0,
            "score": score_from_pd(np.ones(len(defaulted))),
            "grade": scale.default_grade,
            "reasons": reasons,
        },
        index=defaulted.index,
    )


def score_snapshot(scorer: CreditScorer, snapshot: pd.DataFrame) -> pd.DataFrame:
    """Snapshot features with pd, score, grade and reasons beside them: the scorer's for the
    performing customers, `default_scores` for those in default."""
    features = snapshot.drop(columns=[LABEL], errors="ignore").reset_index(drop=True)
    defaulted = in_default(features)
    parts = []
    if not defaulted.all():
        scores = scorer.score_frame(features[~defaulted]).drop(columns=["customer_id"])
        parts.append(scores.set_axis(features.index[~defaulted]))
    if defaulted.any():
        parts.append(default_scores(features[defaulted], scorer.master_scale))
    return pd.concat([features, pd.concat(parts).sort_index()], axis=1)


def policy_inputs(scored: pd.DataFrame) -> list[str]:
    """What `decide` read for each customer, one JSON object per row (`policy.inputs_text`)."""
    limits = scored.reindex(columns=list(LIMIT_INPUTS.values())).apply(
        pd.to_numeric, errors="coerce"
    )
    columns = (limits[c].to_numpy(dtype=float).tolist() for c in limits)
    return [inputs_text(g, v) for g, *v in zip(scored["grade"].tolist(), *columns, strict=True)]


def decide_scores(
    snapshot: pd.DataFrame, scorer: CreditScorer, policy: CreditPolicy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a snapshot and decide the policy; the decisions carry the inputs it read."""
    scored = score_snapshot(scorer, snapshot)
    return scored, decide(scored, policy).assign(inputs=policy_inputs(scored))


def defaulted_warnings(defaulted: pd.DataFrame) -> pd.DataFrame:
    """Warning rows of customers in default: level ``defaulted``, handed to collections."""
    return pd.DataFrame(
        {
            "customer_id": defaulted["customer_id"].to_numpy(),
            "as_of": defaulted[TIME].to_numpy(),
            "level": DEFAULTED,
            "signals": "in_default",
            "n_signals": 1,
            "measures": COLLECTIONS,
            "evidence": [json.dumps({"in_default": {DEFAULTED_ON: d}}) for d in _since(defaulted)],
        }
    )


def raise_warnings(
    scored: pd.DataFrame, history: pd.DataFrame, config: DecisionConfig
) -> pd.DataFrame:
    """The performing customers' warnings against the score history (green where no signal
    fired), and a ``defaulted`` row for each customer in default."""
    defaulted = in_default(scored)
    performing = scored[~defaulted]
    signals = evaluate_signals(performing, history, config.rules, config.scale)
    warnings = roll_up(signals, config.rules, population=performing)
    if not defaulted.any():
        return warnings
    return pd.concat([warnings, defaulted_warnings(scored[defaulted])], ignore_index=True)


def decide_date(
    snapshot: pd.DataFrame, scorer: CreditScorer, history: pd.DataFrame, config: DecisionConfig
) -> ScoredDate:
    """One as-of date: score, decide the policy, raise warnings against the score history.

    The snapshot is scored as read back from its Parquet bytes, which the run keeps with the
    configuration texts: what is stored is exactly what was scored.
    """
    data = snapshot_bytes(snapshot)
    snapshot = snapshot_frame(data)
    as_of = pd.Timestamp(snapshot[TIME].iloc[0])
    scored, decisions = decide_scores(snapshot, scorer, config.policy)
    warnings = raise_warnings(scored, history, config)
    trace = RunTrace(config.texts, data, len(snapshot))
    return ScoredDate(as_of.date(), scored, decisions, warnings, trace)


def batch_history(
    stored: pd.DataFrame, done: list[ScoredDate], as_of: pd.Timestamp
) -> pd.DataFrame:
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
        history = batch_history(stored, done, pd.Timestamp(as_of))
        done.append(decide_date(snapshot, scorer, history, request.config))
        failpoint("after-first-date-scored")
    return done


def _outcomes(
    dates: list[ScoredDate], written: list[RunWritten], scale: MasterScale
) -> list[ScoringOutcome]:
    """Each run with its grade counts and policy summary, grades best first, D last."""
    by_date = {pd.Timestamp(d.as_of): d for d in dates}
    order = {grade: i for i, grade in enumerate(scale.grades)}
    outcomes = []
    for run in written:
        date = by_date[pd.Timestamp(run.as_of)]
        summary = policy_summary(date.decisions, date.scored["grade"])
        outcomes.append(
            ScoringOutcome(
                as_of=pd.Timestamp(run.as_of),
                written=run,
                grades=date.scored["grade"].value_counts(),
                policy=summary.sort_values("grade", key=lambda g: g.map(order), ignore_index=True),
            )
        )
    return outcomes


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
    return _outcomes(dates, _write(dates, request, publish=True), request.config.scale)


def stage_dates(dates: list[ScoredDate], request: ScoringRequest) -> None:
    """Write the dates' runs as pending runs of the request's job, seen by no reader yet."""
    _write(dates, request, publish=False)


def publish_dates(dates: list[ScoredDate], request: ScoringRequest) -> list[ScoringOutcome]:
    """Make the job's pending runs current, all in one transaction."""
    with _store(request.results_url) as engine:
        written = publish_runs(engine, request.job_id, request.user)
    return _outcomes(dates, written, request.config.scale)


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


def check_signature(scorer: CreditScorer, snapshots: pd.DataFrame, request: ScoringRequest) -> None:
    """`BadInput` naming what differs when the snapshot does not fit the scorer's signature,
    before anything is scored or written."""
    differences = scorer.signature_mismatches(snapshots)
    if differences:
        model = f"{request.model_name} version {request.model_version}"
        raise BadInput(
            f"the snapshot does not match the signature of {model}: "
            + "; ".join(scorer.signature_differences(snapshots)),
            source="snapshot",
            field=differences[0][0],
            hint=f"build the snapshot with the features {model} was trained on (creditrisk "
            "features), or score it with the model version it was built for",
        )


def stored_histories(
    request: ScoringRequest, dates: list[pd.Timestamp]
) -> dict[pd.Timestamp, pd.DataFrame]:
    """The stored score history before each of ``dates`` (as `decide_dates` reads it)."""
    with _store(request.results_url) as engine:
        return {
            d: read_score_history(engine, request.model_name, before=d, months=HISTORY_MONTHS)
            for d in dates
        }


def compute_dates(snapshots: pd.DataFrame, request: ScoringRequest) -> list[ScoredDate]:
    """Load the scorer and decide every date of ``snapshots``, storing nothing yet."""
    with as_typed():
        client = connect(request.tracking_uri)
        scorer = load_scorer(client, request.model_name, request.model_version)
    check_signature(scorer, snapshots, request)
    with _store(request.results_url) as engine:
        return decide_dates(snapshots, scorer, engine, request)


def score_dates(snapshots: pd.DataFrame, request: ScoringRequest) -> list[ScoringOutcome]:
    """Score, decide and store every as-of date of ``snapshots``: all dates or none."""
    return store_dates(compute_dates(snapshots, request), request)


def champion_version(tracking_uri: str, model_name: str) -> str:
    """The version the `champion` alias points at; `NotFound` when there is none."""
    with as_typed():
        version = alias_version(connect(tracking_uri), model_name, CHAMPION)
    if version is None:
        raise NotFound(
            f"model {model_name!r} has no champion to score with",
            field="--model",
            hint="train and promote one (creditrisk train, creditrisk promote VERSION), or give "
            "--version",
        )
    return version


def run_key(trace: RunTrace, model_version: str) -> dict[str, str]:
    """What makes a run of one as-of date, as its row records it: the model version and the
    hashes of the configuration texts and the snapshot scored."""
    return {"model_version": str(model_version), **trace.hashes()}


def _matching(keys: dict[pd.Timestamp, dict[str, str]], request: ScoringRequest) -> dict:
    """The dates of ``keys`` whose current run of the model has exactly that key, with its id."""
    with _store(request.results_url) as engine:
        runs = list_runs(engine, request.model_name)
    runs = runs.assign(as_of=pd.to_datetime(runs["as_of"]))
    found = {}
    for as_of, key in keys.items():
        same = runs[runs["as_of"] == as_of]
        if len(same) and all(str(same.iloc[0][c]) == v for c, v in key.items()):
            found[as_of] = int(same.iloc[0]["id"])
    return found


def current_runs(snapshots: pd.DataFrame, request: ScoringRequest) -> dict[pd.Timestamp, int]:
    """The as-of dates of ``snapshots`` whose current run already scored exactly this (same
    model version, configuration and snapshot), with that run's id: a rerun must not redo them."""
    keys = {
        pd.Timestamp(as_of): run_key(
            RunTrace(request.config.texts, snapshot_bytes(snapshot), len(snapshot)),
            request.model_version,
        )
        for as_of, snapshot in snapshots.groupby(TIME, sort=True)
    }
    return _matching(keys, request)


def store_new_dates(
    dates: list[ScoredDate], request: ScoringRequest
) -> tuple[list[ScoringOutcome], dict[pd.Timestamp, int]]:
    """`store_dates` for the dates not already current with the same key (a retried write that
    had committed writes nothing again); returns the outcomes and the dates left as they were."""
    keys = {
        pd.Timestamp(d.as_of): run_key(d.trace, request.model_version)
        for d in dates
        if d.trace is not None
    }
    current = _matching(keys, request)
    new = [d for d in dates if pd.Timestamp(d.as_of) not in current]
    return (store_dates(new, request) if new else []), current
