"""Write a scored run (scores, policy decisions, warnings) to the results store in one transaction.

Bulk paths: PostgreSQL gets psycopg COPY on the transaction's own connection, SQLite a driver
executemany of tuples. Rerunning the same as-of date and model replaces the earlier run (delete +
insert in the same transaction); an exception part way leaves nothing visible.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from itertools import repeat
from typing import Literal

import pandas as pd
from sqlalchemy import Connection, Engine, delete, insert, select, update

from pipelines.store.bulk import fast_insert
from pipelines.store.lifecycle import audit, sync_warnings
from pipelines.store.tables import PolicyDecision, RunRecord, Score, _utcnow

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["customer_id", "pd", "score", "grade", "reasons"]
DECISION_COLUMNS = [
    "customer_id",
    "recommended_limit",
    "term_days",
    "conditions",
    "approval_level",
    "binding_rule",
]
Method = Literal["auto", "copy", "driver", "core"]


@dataclass(frozen=True)
class RunWritten:
    """What `write_scored_run` did: the new run id, rows written, the run it replaced."""

    run_id: int
    as_of: dt.date
    n_scores: int
    n_decisions: int
    replaced_run_id: int | None
    warnings: dict[str, int] = field(default_factory=dict)


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _check(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise KeyError(f"{what} frame lacks columns {missing}; it needs {columns}")
    if frame["customer_id"].duplicated().any():
        raise ValueError(f"{what} frame has duplicate customer_id rows; one row per customer")


def _rows(frame: pd.DataFrame, columns: list[str], run_id: int) -> list[tuple]:
    values = []
    for c in columns:
        col = frame[c]
        values.append(
            col.astype(object).where(col.notna(), None).tolist() if col.hasnans else col.tolist()
        )
    return list(zip(repeat(run_id, len(frame)), *values, strict=False))


def bulk_insert(
    conn: Connection, table, columns: list[str], frame: pd.DataFrame, run_id: int, method: Method
) -> None:
    """Insert `frame[columns]` with a leading run_id by the fastest path the dialect has."""
    fast_insert(conn, table, ["run_id", *columns], _rows(frame, columns, run_id), method)


def _replace_previous(conn: Connection, key: dict) -> int | None:
    runs = RunRecord.__table__
    old = conn.execute(select(runs.c.id).filter_by(**key)).scalar()
    if old is not None:
        conn.execute(delete(Score.__table__).where(Score.__table__.c.run_id == old))
        conn.execute(
            delete(PolicyDecision.__table__).where(PolicyDecision.__table__.c.run_id == old)
        )
        conn.execute(delete(runs).where(runs.c.id == old))
    return old


def write_scored_run(
    engine: Engine,
    scored: pd.DataFrame,
    decisions: pd.DataFrame | None,
    warnings: pd.DataFrame | None,
    model_name: str,
    model_version: str,
    as_of,
    user: str,
    *,
    method: Method = "auto",
) -> RunWritten:
    """Write one scored run in a single transaction, replacing a run of the same as_of and model.

    `scored` needs customer_id, pd, score, grade, reasons; `decisions` is `policy.decide` output;
    `warnings` is `early_warning.roll_up` output (green rows optional). Warnings go through the
    lifecycle (see `pipelines.store.lifecycle`); every customer scored without a warning counts
    as green. The write is audited as `run_written` (or `run_failed`).
    """
    if not user or not str(user).strip():
        raise ValueError("user is required: who is writing this run (recorded in the audit log)")
    _check(scored, SCORE_COLUMNS, "scored")
    if decisions is not None:
        _check(decisions, DECISION_COLUMNS, "decisions")
    as_of = _as_date(as_of)
    key = {"as_of": as_of, "model_name": model_name, "model_version": str(model_version)}
    runs = RunRecord.__table__
    try:
        with engine.begin() as conn:
            replaced = _replace_previous(conn, key)
            run_id = conn.execute(
                insert(runs)
                .values(
                    **key,
                    started_at=_utcnow(),
                    status="running",
                    n_customers=len(scored),
                    created_by=user,
                )
                .returning(runs.c.id)
            ).scalar_one()
            bulk_insert(conn, Score.__table__, SCORE_COLUMNS, scored, run_id, method)
            if decisions is not None:
                bulk_insert(
                    conn, PolicyDecision.__table__, DECISION_COLUMNS, decisions, run_id, method
                )
            counts = {}
            if warnings is not None:
                counts = sync_warnings(
                    conn, warnings, scored["customer_id"], as_of, run_id, user, method=method
                )
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(finished_at=_utcnow(), status="succeeded")
            )
            audit(
                conn,
                user,
                "run_written",
                f"score_run:{run_id}",
                {
                    **{k: str(v) for k, v in key.items()},
                    "n_scores": len(scored),
                    "n_decisions": 0 if decisions is None else len(decisions),
                    "replaced_run_id": replaced,
                    "warnings": counts,
                },
            )
    except Exception as exc:
        _audit_failure(engine, user, key, exc)
        raise
    return RunWritten(
        run_id=run_id,
        as_of=as_of,
        n_scores=len(scored),
        n_decisions=0 if decisions is None else len(decisions),
        replaced_run_id=replaced,
        warnings=counts,
    )


def _audit_failure(engine: Engine, user: str, key: dict, exc: Exception) -> None:
    try:
        with engine.begin() as conn:
            audit(
                conn,
                user,
                "run_failed",
                f"score_run:{key['model_name']}@{key['as_of']}",
                {**{k: str(v) for k, v in key.items()}, "error": type(exc).__name__},
            )
    except Exception:  # the store itself may be what failed
        log.exception("could not record the failed run in the audit log")
