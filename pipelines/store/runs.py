"""Write scored runs (scores, policy decisions, warnings) to the results store in one transaction.

Bulk paths: PostgreSQL gets psycopg COPY on the transaction's own connection, SQLite a driver
executemany of tuples. One as-of date and model has one current run: a later run supersedes it
(the earlier one is kept as history); an exception part way leaves nothing visible.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from itertools import repeat
from typing import Literal

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from pipelines.failpoints import failpoint
from pipelines.store.bulk import fast_insert
from pipelines.store.db import writing
from pipelines.store.lifecycle import audit, sync_warnings
from pipelines.store.tables import PolicyDecision, RunRecord, Score, StagedWarning, _utcnow
from pipelines.store.trace import SNAPSHOTS, RunTrace, store_trace

log = logging.getLogger(__name__)
RUNS, SCORES, DECISIONS = RunRecord.__table__, Score.__table__, PolicyDecision.__table__
STAGED = StagedWarning.__table__
STAGED_COLUMNS = ["customer_id", "level", "signals", "n_signals", "evidence", "measures"]

SCORE_COLUMNS = ["customer_id", "pd", "score", "grade", "reasons"]
DECISION_COLUMNS = [
    "customer_id",
    "recommended_limit",
    "term_days",
    "conditions",
    "approval_level",
    "binding_rule",
]
STORED_DECISION_COLUMNS = [*DECISION_COLUMNS, "inputs"]
Method = Literal["auto", "copy", "driver", "core"]


@dataclass(frozen=True)
class ScoredDate:
    """What scoring computed for one as-of date, before it is stored.

    ``scored`` needs customer_id, pd, score, grade, reasons; ``decisions`` is `policy.decide`
    output, with ``inputs`` (JSON of what the policy read) when known; ``warnings`` is
    `early_warning.roll_up` output (green rows optional; level ``defaulted`` for customers in
    default); ``trace`` what produced the run (configuration texts, the snapshot scored).
    """

    as_of: dt.date
    scored: pd.DataFrame
    decisions: pd.DataFrame | None = None
    warnings: pd.DataFrame | None = None
    trace: RunTrace | None = None


@dataclass(frozen=True)
class RunWritten:
    """What the writer stored for one date: the run id, rows written, the run it superseded."""

    run_id: int
    as_of: dt.date
    n_scores: int
    n_decisions: int
    superseded_run_id: int | None
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


def _supersede_current(conn: Connection, as_of: dt.date, model_name: str) -> int | None:
    """Mark the current run of ``as_of`` and ``model_name`` superseded; returns its id."""
    old = conn.execute(
        select(RUNS.c.id).where(
            RUNS.c.as_of == as_of, RUNS.c.model_name == model_name, RUNS.c.status == "succeeded"
        )
    ).scalar()
    if old is not None:
        conn.execute(
            update(RUNS)
            .where(RUNS.c.id == old)
            .values(status="superseded", superseded_at=_utcnow())
        )
    return old


def _stage_date(
    conn: Connection,
    date: ScoredDate,
    key: dict,
    user: str,
    job_id: str | None,
    method: Method,
) -> int:
    """Insert a pending run with its trace, scores and decisions; returns the run id."""
    hashes = {} if date.trace is None else store_trace(conn, date.trace)
    run_id = conn.execute(
        insert(RUNS)
        .values(
            **key,
            **hashes,
            started_at=_utcnow(),
            status="pending",
            n_customers=len(date.scored),
            created_by=user,
            job_id=job_id,
        )
        .returning(RUNS.c.id)
    ).scalar_one()
    bulk_insert(conn, SCORES, SCORE_COLUMNS, date.scored, run_id, method)
    if date.decisions is not None:
        decisions = date.decisions.reindex(columns=STORED_DECISION_COLUMNS)
        bulk_insert(conn, DECISIONS, STORED_DECISION_COLUMNS, decisions, run_id, method)
    return run_id


def _stage_warnings(conn: Connection, run_id: int, warnings: pd.DataFrame, method: Method) -> None:
    flagged = warnings.loc[warnings["level"] != "green"]
    bulk_insert(conn, STAGED, STAGED_COLUMNS, flagged, run_id, method)


def _publish(
    conn: Connection,
    run: dict,
    warnings: pd.DataFrame | None,
    scored_ids: pd.Series,
    n_decisions: int,
    user: str,
    method: Method,
) -> RunWritten:
    """Make a pending run the current one of its date: supersede, apply warnings, audit."""
    superseded = _supersede_current(conn, run["as_of"], run["model_name"])
    conn.execute(
        update(RUNS).where(RUNS.c.id == run["id"]).values(status="succeeded", finished_at=_utcnow())
    )
    if superseded is not None:
        conn.execute(update(RUNS).where(RUNS.c.id == superseded).values(superseded_by=run["id"]))
    counts = {}
    if warnings is not None:
        counts = sync_warnings(
            conn, warnings, scored_ids, run["as_of"], run["id"], user, method=method
        )
    details = {k: str(run[k]) for k in ("as_of", "model_name", "model_version")}
    details |= {"n_scores": len(scored_ids), "n_decisions": n_decisions, "job_id": run["job_id"]}
    details |= {"superseded_run_id": superseded, "warnings": counts}
    audit(conn, user, "run_written", f"score_run:{run['id']}", details)
    return RunWritten(run["id"], run["as_of"], len(scored_ids), n_decisions, superseded, counts)


def write_scored_runs(
    engine: Engine,
    dates: list[ScoredDate],
    model_name: str,
    model_version: str,
    user: str,
    *,
    job_id: str | None = None,
    publish: bool = True,
    method: Method = "auto",
) -> list[RunWritten]:
    """Write the runs of several as-of dates in ONE transaction, oldest date first.

    With ``publish`` each becomes the current run of its date and model, and the run it
    replaces is kept, marked superseded. Without, the runs are staged (pending, seen by no
    reader, warnings held back) until `publish_runs` of their ``job_id``. An exception part way
    leaves nothing visible. Audited as `run_written` per date (or `run_failed`).
    """
    _check_user(user)
    if not publish and not job_id:
        raise ValueError("staged runs need a job_id to publish or discard them by")
    for date in dates:
        _check(date.scored, SCORE_COLUMNS, "scored")
        if date.decisions is not None:
            _check(date.decisions, DECISION_COLUMNS, "decisions")
    ordered = sorted(dates, key=lambda d: _as_date(d.as_of))
    written = []
    try:
        with writing(engine) as conn:
            for date in ordered:
                as_of = _as_date(date.as_of)
                key = {
                    "as_of": as_of,
                    "model_name": model_name,
                    "model_version": str(model_version),
                }
                run_id = _stage_date(conn, date, key, user, job_id, method)
                failpoint("during-store-write")  # scores inserted, nothing committed
                n_decisions = 0 if date.decisions is None else len(date.decisions)
                if not publish:
                    if date.warnings is not None:
                        _stage_warnings(conn, run_id, date.warnings, method)
                    written.append(RunWritten(run_id, as_of, len(date.scored), n_decisions, None))
                    continue
                run = {"id": run_id, **key, "job_id": job_id}
                scored_ids = date.scored["customer_id"]
                written.append(
                    _publish(conn, run, date.warnings, scored_ids, n_decisions, user, method)
                )
    except Exception as exc:
        _audit_failure(engine, user, model_name, model_version, ordered, exc)
        raise
    return written


def _pending(conn: Connection, job_id: str) -> list[dict]:
    stmt = select(RUNS).where(RUNS.c.job_id == job_id, RUNS.c.status == "pending")
    return [dict(r) for r in conn.execute(stmt.order_by(RUNS.c.as_of, RUNS.c.id)).mappings()]


def publish_runs(
    engine: Engine, job_id: str, user: str, method: Method = "auto"
) -> list[RunWritten]:
    """Make every pending run of ``job_id`` current, in one transaction, oldest date first."""
    _check_user(user)
    written = []
    with writing(engine) as conn:
        for run in _pending(conn, job_id):
            staged = pd.DataFrame(
                conn.execute(select(STAGED).where(STAGED.c.run_id == run["id"])).mappings().all(),
                columns=["run_id", *STAGED_COLUMNS],
            ).drop(columns="run_id")
            scored_ids = pd.Series(
                conn.execute(select(SCORES.c.customer_id).where(SCORES.c.run_id == run["id"]))
                .scalars()
                .all(),
                dtype=object,
            )
            n_decisions = conn.execute(
                select(func.count()).where(DECISIONS.c.run_id == run["id"])
            ).scalar_one()
            written.append(_publish(conn, run, staged, scored_ids, n_decisions, user, method))
            conn.execute(delete(STAGED).where(STAGED.c.run_id == run["id"]))
    return written


def discard_runs(engine: Engine, job_id: str) -> list[int]:
    """Drop the rows of every pending run of ``job_id`` and mark the runs discarded; their
    snapshots go too unless another run scored the same one."""
    with writing(engine) as conn:
        pending = _pending(conn, job_id)
        ids = [run["id"] for run in pending]
        for table in (SCORES, DECISIONS, STAGED):
            conn.execute(delete(table).where(table.c.run_id.in_(ids)))
        conn.execute(
            update(RUNS).where(RUNS.c.id.in_(ids)).values(status="discarded", finished_at=_utcnow())
        )
        kept = select(RUNS.c.snapshot_sha256).where(
            RUNS.c.status != "discarded", RUNS.c.snapshot_sha256.is_not(None)
        )
        conn.execute(
            delete(SNAPSHOTS).where(
                SNAPSHOTS.c.sha256.in_([r["snapshot_sha256"] for r in pending]),
                SNAPSHOTS.c.sha256.not_in(kept),
            )
        )
    return ids


def pending_versions(engine: Engine, job_id: str) -> list[tuple[str, str]]:
    """The (model name, version) pairs of ``job_id``'s pending runs."""
    with engine.connect() as conn:
        return sorted({(r["model_name"], r["model_version"]) for r in _pending(conn, job_id)})


def _check_user(user: str) -> None:
    if not user or not str(user).strip():
        raise ValueError("user is required: who is writing this run (recorded in the audit log)")


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
    trace: RunTrace | None = None,
    method: Method = "auto",
) -> RunWritten:
    """Write and publish one as-of date's run (see `write_scored_runs`)."""
    date = ScoredDate(_as_date(as_of), scored, decisions, warnings, trace)
    (written,) = write_scored_runs(engine, [date], model_name, model_version, user, method=method)
    return written


def _audit_failure(
    engine: Engine, user: str, model_name: str, version: str, dates: list[ScoredDate], exc
) -> None:
    as_of = ",".join(str(_as_date(d.as_of)) for d in dates)
    details = {"model_name": model_name, "model_version": str(version), "as_of": as_of}
    try:
        with writing(engine) as conn:
            audit(
                conn,
                user,
                "run_failed",
                f"score_run:{model_name}@{as_of}",
                {**details, "error": type(exc).__name__},
            )
    except Exception:  # the store itself may be what failed
        log.exception("could not record the failed run in the audit log")
