"""Reads and small writes on the results store shared by the CLI, the flows and the API."""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Engine, and_, bindparam, func, insert, select
from sqlalchemy.exc import DBAPIError

from pipelines.store.db import writing
from pipelines.store.lifecycle import ACTIVE, _require, audit
from pipelines.store.tables import (
    AuditLog,
    EarlyWarning,
    Override,
    PolicyDecision,
    RunRecord,
    Score,
    _utcnow,
)

if TYPE_CHECKING:
    from models.master_scale import MasterScale
    from models.validation import MigrationResult

RUNS, SCORES, DECISIONS = RunRecord.__table__, Score.__table__, PolicyDecision.__table__
W, OVERRIDES, AUDIT = EarlyWarning.__table__, Override.__table__, AuditLog.__table__


def _frame(engine: Engine, stmt) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(stmt)
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def list_runs(
    engine: Engine, model_name: str | None = None, *, current_only: bool = True
) -> pd.DataFrame:
    """Current runs (one per as-of date and model), newest as-of first; with ``current_only``
    False the superseded ones too."""
    statuses = ("succeeded",) if current_only else ("succeeded", "superseded")
    stmt = select(RUNS).where(RUNS.c.status.in_(statuses))
    if model_name:
        stmt = stmt.where(RUNS.c.model_name == model_name)
    return _frame(engine, stmt.order_by(RUNS.c.as_of.desc(), RUNS.c.id.desc()))


def latest_run_ids(engine: Engine, model_name: str | None = None, n: int = 2) -> list[int]:
    """Ids of the newest `n` current runs (by as-of date, then id), newest first."""
    return list(list_runs(engine, model_name)["id"].head(n).astype(int))


def read_scores(engine: Engine, run_id: int) -> pd.DataFrame:
    return _frame(engine, select(SCORES).where(SCORES.c.run_id == run_id))


def read_decisions(engine: Engine, run_id: int) -> pd.DataFrame:
    return _frame(engine, select(DECISIONS).where(DECISIONS.c.run_id == run_id))


def run_migration(
    engine: Engine, before_run: int, after_run: int, scale: MasterScale | None = None
) -> MigrationResult:
    """Migration matrix between two stored runs."""
    from pipelines.decisions.ratings import migration

    return migration(read_scores(engine, before_run), read_scores(engine, after_run), scale)


def _history_statement(model_name: str, before: Any, months: int, customer_ids=None):
    """customer_id, as_of, pd, grade of the current runs dated in [before - months, before)."""
    before = pd.Timestamp(before)
    start = (before - pd.DateOffset(months=months)).date()
    stmt = (
        select(SCORES.c.customer_id, RUNS.c.as_of, SCORES.c.pd, SCORES.c.grade)
        .join(RUNS, RUNS.c.id == SCORES.c.run_id)
        .where(
            RUNS.c.model_name == model_name,
            RUNS.c.status == "succeeded",
            RUNS.c.as_of >= start,
            RUNS.c.as_of < before.date(),
        )
    )
    if customer_ids is not None:
        stmt = stmt.where(SCORES.c.customer_id.in_([str(c) for c in customer_ids]))
    return stmt


def read_score_history(
    engine: Engine,
    model_name: str,
    before: Any,
    months: int = 12,
    customer_ids: list[str] | None = None,
) -> pd.DataFrame:
    """customer_id, as_of, pd, grade of the current runs dated in [before - months, before);
    only ``customer_ids`` when given."""
    history = _frame(engine, _history_statement(model_name, before, months, customer_ids))
    history["as_of"] = pd.to_datetime(history["as_of"])
    return history


_ONE_HISTORY = (
    select(RUNS.c.as_of, SCORES.c.pd, SCORES.c.grade)
    .join(RUNS, RUNS.c.id == SCORES.c.run_id)
    .where(
        RUNS.c.model_name == bindparam("model_name"),
        RUNS.c.status == bindparam("status"),
        RUNS.c.as_of >= bindparam("start"),
        RUNS.c.as_of < bindparam("before"),
        SCORES.c.customer_id == bindparam("customer_id"),
    )
    .order_by(RUNS.c.as_of)
)


def score_history_rows(
    engine: Engine, model_name: str, before: dt.date, start: dt.date, customer_id: str
) -> list[tuple[dt.date, float, str]]:
    """One customer's (as_of, pd, grade) in the current runs dated in [start, before), oldest
    first: `read_score_history`'s rows of one customer, without a frame (online decisions)."""
    sql, names, dates_as_text = _one_history_sql(engine.dialect)
    given = {"model_name": model_name, "status": "succeeded", "start": start, "before": before,
             "customer_id": customer_id}  # fmt: skip
    if dates_as_text:  # as SQLAlchemy's Date binds them on SQLite
        given.update(start=start.isoformat(), before=before.isoformat())
    params = given if names is None else tuple(given[n] for n in names)
    raw = engine.raw_connection()  # one indexed query on the driver's cursor: no Core round
    driver_error = engine.dialect.loaded_dbapi.Error
    try:
        cursor = raw.cursor()
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    except driver_error as exc:  # as the Core raises it (the typed errors map those)
        raise DBAPIError.instance(sql, params, exc, driver_error, dialect=engine.dialect) from exc
    finally:
        raw.close()
    return [(_as_date(day), float(pd_), str(grade)) for day, pd_, grade in rows]


@functools.cache
def _one_history_sql(dialect) -> tuple[str, tuple[str, ...] | None, bool]:
    """`_ONE_HISTORY` compiled for ``dialect``: the SQL, the order of its parameters (None:
    by name) and whether dates bind as ISO text (SQLite)."""
    compiled = _ONE_HISTORY.compile(dialect=dialect)
    names = compiled.positiontup
    return compiled.string, None if names is None else tuple(names), dialect.name == "sqlite"


def _as_date(value: Any) -> dt.date:
    """A date column's value as the driver gives it (a date, or ISO text on SQLite)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def customer_scores(engine: Engine, model_name: str, customer_id: str) -> pd.DataFrame:
    """The customer's score and policy decision in every current run of the model, newest
    as-of first: as_of, run_id, model_version, pd, score, grade, reasons and the decision."""
    stmt = (
        select(
            RUNS.c.as_of,
            RUNS.c.id.label("run_id"),
            RUNS.c.model_version,
            SCORES.c.pd,
            SCORES.c.score,
            SCORES.c.grade,
            SCORES.c.reasons,
            DECISIONS.c.recommended_limit,
            DECISIONS.c.term_days,
            DECISIONS.c.conditions,
            DECISIONS.c.approval_level,
            DECISIONS.c.binding_rule,
            DECISIONS.c.inputs,
        )
        .join(RUNS, RUNS.c.id == SCORES.c.run_id)
        .outerjoin(
            DECISIONS,
            and_(DECISIONS.c.run_id == SCORES.c.run_id, DECISIONS.c.customer_id == customer_id),
        )
        .where(
            SCORES.c.customer_id == customer_id,
            RUNS.c.status == "succeeded",
            RUNS.c.model_name == model_name,
        )
        .order_by(RUNS.c.as_of.desc(), RUNS.c.id.desc())
    )
    return _frame(engine, stmt)


def read_warnings(
    engine: Engine,
    status: tuple[str, ...] | None = ACTIVE,
    levels: tuple[str, ...] | None = None,
    customer_id: str | None = None,
) -> pd.DataFrame:
    """Stored warnings, newest (last as-of, then opened) first."""
    stmt = select(W)
    if status:
        stmt = stmt.where(W.c.status.in_(status))
    if levels:
        stmt = stmt.where(W.c.level.in_(levels))
    if customer_id:
        stmt = stmt.where(W.c.customer_id == customer_id)
    return _frame(engine, stmt.order_by(W.c.last_as_of.desc(), W.c.opened_at.desc(), W.c.id.desc()))


def read_warning(engine: Engine, warning_id: int) -> dict[str, Any] | None:
    """One stored warning as a mapping, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(W).where(W.c.id == warning_id)).mappings().first()
    return None if row is None else dict(row)


def read_watchlist(engine: Engine, model_name: str | None = None) -> pd.DataFrame:
    """The stored watch list joined with each customer's rating in the latest run."""
    from pipelines.decisions.ratings import WATCH_LEVELS, watchlist

    warnings = read_warnings(engine, levels=WATCH_LEVELS)
    latest = latest_run_ids(engine, model_name, n=1)
    scores = read_scores(engine, latest[0]) if latest else None
    return watchlist(warnings, scores)


def open_warnings_by_level(engine: Engine) -> dict[str, int]:
    """Active (open or acknowledged) warnings per level, for run summaries."""
    stmt = select(W.c.level, func.count()).where(W.c.status.in_(ACTIVE)).group_by(W.c.level)
    with engine.connect() as conn:
        found = dict(conn.execute(stmt).all())
    return {lv: int(found.get(lv, 0)) for lv in ("watch", "amber", "red")}


def record_override(
    engine: Engine,
    customer_id: str,
    limit: float,
    user: str,
    reason: str,
    *,
    term_days: int | None = None,
    conditions: str | None = None,
    run_id: int | None = None,
) -> dict[str, Any]:
    """Record a manual limit override (user and reason required) against the latest decision."""
    user, reason = _require(user, "user"), _require(reason, "reason")
    if limit is None or limit < 0:
        raise ValueError(f"override limit must be >= 0, got {limit}")
    with writing(engine) as conn:
        stmt = (
            select(DECISIONS.c.run_id, DECISIONS.c.recommended_limit, RUNS.c.as_of)
            .join(RUNS, RUNS.c.id == DECISIONS.c.run_id)
            .where(DECISIONS.c.customer_id == customer_id, RUNS.c.status == "succeeded")
        )
        if run_id is not None:
            stmt = stmt.where(DECISIONS.c.run_id == run_id)
        found = conn.execute(stmt.order_by(RUNS.c.as_of.desc(), RUNS.c.id.desc())).first()
        if found is None:
            where = f"run {run_id}" if run_id is not None else "the store"
            raise LookupError(
                f"customer {customer_id} has no policy decision in {where}; score it first"
            )
        row = {
            "customer_id": customer_id,
            "as_of": found.as_of,
            "run_id": found.run_id,
            "original_limit": found.recommended_limit,
            "override_limit": float(limit),
            "term_days": term_days,
            "conditions": conditions,
            "user": user,
            "reason": reason,
            "created_at": _utcnow(),
        }
        override_id = conn.execute(
            insert(OVERRIDES).values(**row).returning(OVERRIDES.c.id)
        ).scalar()
        audit(
            conn,
            user,
            "override",
            f"override:{override_id}",
            {
                k: (str(v) if isinstance(v, dt.date) else v)
                for k, v in row.items()
                if k not in ("user", "created_at")
            },
        )
    return {"id": override_id, **row}


def read_overrides(engine: Engine, customer_id: str | None = None) -> pd.DataFrame:
    stmt = select(OVERRIDES)
    if customer_id:
        stmt = stmt.where(OVERRIDES.c.customer_id == customer_id)
    return _frame(engine, stmt.order_by(OVERRIDES.c.created_at.desc(), OVERRIDES.c.id.desc()))


def read_audit(engine: Engine, limit: int = 100, action: str | None = None) -> pd.DataFrame:
    stmt = select(AUDIT)
    if action:
        stmt = stmt.where(AUDIT.c.action == action)
    return _frame(engine, stmt.order_by(AUDIT.c.id.desc()).limit(limit))


def grade_counts(engine: Engine, run_id: int) -> pd.Series:
    stmt = (
        select(SCORES.c.grade, func.count().label("n"))
        .where(and_(SCORES.c.run_id == run_id))
        .group_by(SCORES.c.grade)
    )
    frame = _frame(engine, stmt)
    return frame.set_index("grade")["n"]
