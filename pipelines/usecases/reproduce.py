"""Use case: recompute a stored scoring run from what it recorded and say whether it matches.

A run names its model version and the hashes of the credit policy, warning rules, master scale
and snapshot it used; the store keeps those texts and the snapshot under their hashes. Each is
checked against its hash, the model version is loaded from MLflow, and the PD, score, grade,
reasons and policy decision (with the inputs it read) of every customer are recomputed and
compared with the stored ones, exactly. Warnings are not recomputed: they depend on the score
history and the warning lifecycle as they stood at the time.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine

from models.registry import load_scorer
from models.tracking import connect
from pipelines.errors import Conflict, NotFound, as_typed
from pipelines.store import queries
from pipelines.store.trace import (
    CONFIG_KINDS,
    StoredTrace,
    read_trace,
    sha256,
    snapshot_frame,
    text_sha256,
)
from pipelines.usecases.scoring import DecisionConfig, decide_scores

SCORE_COLUMNS = ["pd", "score", "grade", "reasons"]
DECISION_COLUMNS = ["recommended_limit", "term_days", "conditions", "approval_level",
                    "binding_rule", "inputs"]  # fmt: skip
JSON_COLUMNS = ("reasons", "inputs")
DIFFERENCE_COLUMNS = ["column", "customers", "customer_id", "stored", "recomputed"]
REPRODUCIBLE = ("succeeded", "superseded")


@dataclass(frozen=True)
class Reproduction:
    """A stored run recomputed: the checks of what it recorded, and what differs.

    ``checks``: item (credit_policy, warning_rules, master_scale, snapshot), sha256, ok, verdict.
    ``differences``: one row per column that differs: customers, first customer_id, stored and
    recomputed values (``customer_id`` rows: customers stored or recomputed only).
    """

    run_id: int
    as_of: dt.date
    model_name: str
    model_version: str
    checks: pd.DataFrame
    differences: pd.DataFrame
    n_customers: int

    @property
    def compared(self) -> bool:
        """Whether the decisions were recomputed (every recorded item passed its check)."""
        return bool(self.checks["ok"].all())

    @property
    def matches(self) -> bool:
        return self.compared and self.differences.empty


def _checks(trace: StoredTrace) -> pd.DataFrame:
    """Each recorded configuration text and the snapshot, checked against its recorded hash."""
    pairs = {}
    for kind, column in CONFIG_KINDS.items():
        text = trace.configs[kind]
        pairs[kind] = (trace.hashes[column], None if text is None else text_sha256(text))
    data = trace.snapshot
    pairs["snapshot"] = (trace.hashes["snapshot_sha256"], None if data is None else sha256(data))
    rows = []
    for item, (recorded, found) in pairs.items():
        ok = found is not None and found == recorded
        why = "missing from the store" if found is None else "changed: its hash is not the run's"
        rows.append((item, recorded, ok, "ok" if ok else why))
    return pd.DataFrame(rows, columns=["item", "sha256", "ok", "verdict"])


def _parsed(value):
    return None if value is None or value != value else json.loads(value)


def _equal(stored, recomputed) -> bool:
    missing = [v is None or (isinstance(v, float) and v != v) for v in (stored, recomputed)]
    return all(missing) or (not any(missing) and stored == recomputed)


def compare(stored: pd.DataFrame, recomputed: pd.DataFrame) -> pd.DataFrame:
    """Per column, the customers whose stored and recomputed values differ (JSON compared as
    parsed, so key order and number spelling do not count; numbers exactly)."""
    both = stored.merge(recomputed, on="customer_id", how="outer", suffixes=("", "_new"),
                        indicator=True)  # fmt: skip
    rows = []
    alone = both[both["_merge"] != "both"]
    if not alone.empty:
        first = alone.iloc[0]
        side = "stored only" if first["_merge"] == "left_only" else "recomputed only"
        rows.append(("customer_id", len(alone), first["customer_id"], side, ""))
    both = both[both["_merge"] == "both"]
    for column in (*SCORE_COLUMNS, *DECISION_COLUMNS):
        old, new = both[column].tolist(), both[f"{column}_new"].tolist()
        if column in JSON_COLUMNS:
            old, new = [_parsed(v) for v in old], [_parsed(v) for v in new]
        differ = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if not _equal(a, b)]
        if differ:
            i = differ[0]
            rows.append((column, len(differ), both["customer_id"].iloc[i], old[i], new[i]))
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS).astype({"stored": str, "recomputed": str})


def _stored(engine: Engine, run_id: int) -> pd.DataFrame:
    scores = queries.read_scores(engine, run_id)[["customer_id", *SCORE_COLUMNS]]
    decisions = queries.read_decisions(engine, run_id)[["customer_id", *DECISION_COLUMNS]]
    return scores.merge(decisions, on="customer_id", how="left")


def _traced(engine: Engine, run_id: int) -> StoredTrace:
    with as_typed():
        trace = read_trace(engine, run_id)
    if trace is None:
        raise NotFound(
            f"no scoring run with id {run_id}",
            field="RUN_ID",
            hint="list runs with `creditrisk ratings runs`",
        )
    if trace.run["status"] not in REPRODUCIBLE:
        raise Conflict(
            f"run {run_id} is {trace.run['status']}; only published runs can be reproduced",
            field="RUN_ID",
            hint="list runs with `creditrisk ratings runs`",
        )
    if all(h is None for h in trace.hashes.values()):
        raise Conflict(
            f"run {run_id} was written before runs recorded their configuration and snapshot "
            "(store migration 0003)",
            field="RUN_ID",
            hint="reproduce a run scored since; `creditrisk ratings runs` lists them",
        )
    return trace


def reproduce_run(engine: Engine, tracking_uri: str, run_id: int) -> Reproduction:
    """Recompute run ``run_id`` from its stored configuration texts, snapshot and model version
    and compare every customer's score and decision with what is stored."""
    trace = _traced(engine, run_id)
    run, checks = trace.run, _checks(trace)
    key = (run_id, run["as_of"], run["model_name"], run["model_version"], checks)
    if not checks["ok"].all():
        return Reproduction(*key, pd.DataFrame(columns=DIFFERENCE_COLUMNS), 0)
    config = DecisionConfig.parse(trace.configs)
    with as_typed():
        scorer = load_scorer(connect(tracking_uri), run["model_name"], run["model_version"])
        stored = _stored(engine, run_id)
    scored, decisions = decide_scores(snapshot_frame(trace.snapshot), scorer, config.policy)
    recomputed = scored[["customer_id", *SCORE_COLUMNS]].merge(
        decisions[["customer_id", *DECISION_COLUMNS]], on="customer_id"
    )
    return Reproduction(*key, compare(stored, recomputed), len(recomputed))
