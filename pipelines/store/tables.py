"""Tables of the results store (SQLAlchemy 2 declarative); Alembic migrations create them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class JSONText(TypeDecorator):
    """JSON kept as text (already-serialised strings pass through); JSONB on PostgreSQL."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect):
        if dialect.name == "postgresql":  # JSONB serialises the object itself
            return json.loads(value) if isinstance(value, str) else value
        return value if value is None or isinstance(value, str) else json.dumps(value)

    def process_result_value(self, value: Any, dialect):
        return value if value is None or isinstance(value, str) else json.dumps(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class RunRecord(Base):
    """One scoring of the book at an as-of date by one model version.

    status: ``succeeded`` is the current run of its as-of date and model (at most one, by a
    unique partial index); ``superseded`` a run replaced by a later one (kept as history, with
    ``superseded_by``); ``pending`` a run staged by job ``job_id`` and not yet published (no
    reader shows it); ``discarded`` a staged run whose job did not publish it.

    The ``*_sha256`` columns trace the run: the credit policy, warning rules and master scale in
    force (texts in `DecisionConfigText`) and the snapshot it scored (`ScoredSnapshot`); they are
    null on runs written before migration 0003.
    """

    __tablename__ = "score_runs"
    __table_args__ = (
        Index(
            "uq_runs_current",
            "as_of",
            "model_name",
            unique=True,
            sqlite_where=text("status = 'succeeded'"),
            postgresql_where=text("status = 'succeeded'"),
        ),
        Index("ix_runs_job", "job_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), default="succeeded")
    n_customers: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    superseded_by: Mapped[int | None] = mapped_column(Integer)
    superseded_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    job_id: Mapped[str | None] = mapped_column(String(64))
    policy_sha256: Mapped[str | None] = mapped_column(String(64))
    rules_sha256: Mapped[str | None] = mapped_column(String(64))
    scale_sha256: Mapped[str | None] = mapped_column(String(64))
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))


class DecisionConfigText(Base):
    """A configuration file as a run used it, kept once per content hash (sha256 of its text)."""

    __tablename__ = "decision_configs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


class ScoredSnapshot(Base):
    """A snapshot a run scored, as Parquet bytes, kept once per content hash (sha256 of them)."""

    __tablename__ = "scored_snapshots"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    n_rows: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


class Score(Base):
    """One customer's score in a run. run_id refers to score_runs.id without a foreign key: the
    per-row check cost 30 % of a PostgreSQL COPY, and write_scored_run, the only writer, inserts
    and deletes a run's rows in one transaction."""

    __tablename__ = "scores"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pd: Mapped[float] = mapped_column(Float)
    score: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[str | None] = mapped_column(JSONText)


class StagedWarning(Base):
    """A pending run's rolled-up warning, applied to the lifecycle when the run is published."""

    __tablename__ = "staged_warnings"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[str] = mapped_column(String(10))
    signals: Mapped[str] = mapped_column(Text)
    n_signals: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[str | None] = mapped_column(Text)
    measures: Mapped[str | None] = mapped_column(Text)


class PolicyDecision(Base):
    """The policy's recommendation for one customer in a run (run_id as in `Score`), with the
    inputs the policy read for it (JSON: grade, revenue, current limit)."""

    __tablename__ = "policy_decisions"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recommended_limit: Mapped[float] = mapped_column(Float)
    term_days: Mapped[int] = mapped_column(Integer)
    conditions: Mapped[str] = mapped_column(String(100))
    approval_level: Mapped[str] = mapped_column(String(40))
    binding_rule: Mapped[str] = mapped_column(String(40))
    inputs: Mapped[str | None] = mapped_column(JSONText)


class Override(Base):
    """A manual change of a recommended decision: who, why, from what to what."""

    __tablename__ = "overrides"
    __table_args__ = (Index("ix_overrides_customer", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[dt.date | None] = mapped_column(Date)
    run_id: Mapped[int | None] = mapped_column(Integer)
    original_limit: Mapped[float | None] = mapped_column(Float)
    override_limit: Mapped[float] = mapped_column(Float)
    term_days: Mapped[int | None] = mapped_column(Integer)
    conditions: Mapped[str | None] = mapped_column(String(100))
    user: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


class EarlyWarning(Base):
    """An early warning for one customer; at most one is not resolved per customer.

    status: ``open`` and ``acknowledged`` are active (runs escalate, refresh, hold or clear them);
    ``defaulted`` the customer went into default while it was active (handed to collections, no
    run changes it any more); ``resolved`` closed by a person or cleared by data.
    """

    __tablename__ = "warnings"
    __table_args__ = (
        Index(
            "uq_warnings_active_customer",
            "customer_id",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_warnings_key", "dedupe_key"),
        Index("ix_warnings_status_level", "status", "level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(10))
    latest_level: Mapped[str] = mapped_column(String(10))
    signals: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    first_as_of: Mapped[dt.date] = mapped_column(Date)
    last_as_of: Mapped[dt.date] = mapped_column(Date)
    last_run_id: Mapped[int | None] = mapped_column(Integer)
    evidence: Mapped[str | None] = mapped_column(JSONText)
    measures: Mapped[str | None] = mapped_column(JSONText)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    acknowledge_note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolution_note: Mapped[str | None] = mapped_column(Text)


class WarningEvent(Base):
    """One step in a warning's life: opened, escalated, updated, acknowledged, resolved, cleared."""

    __tablename__ = "warning_events"
    __table_args__ = (Index("ix_warning_events_warning", "warning_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(20))
    from_level: Mapped[str | None] = mapped_column(String(10))
    to_level: Mapped[str | None] = mapped_column(String(10))
    as_of: Mapped[dt.date | None] = mapped_column(Date)
    user: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


class WarningObservation(Base):
    """What one run found for an active warning: the level its data gave, the signals that fired
    and their values, and what the run did (opened, escalated, updated, kept, held, cleared,
    defaulted). One row per warning per run; the latest is the warning's current evidence."""

    __tablename__ = "warning_observations"
    __table_args__ = (Index("ix_warning_observations_warning", "warning_id", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(Integer)
    as_of: Mapped[dt.date] = mapped_column(Date)
    action: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(10))
    warning_level: Mapped[str] = mapped_column(String(10))
    signals: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(JSONText)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


class AuditLog(Base):
    """Who did what, to what, when (runs written, overrides, acknowledgements, resolutions)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    who: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    what: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class MonitoringRecord(Base):
    """One monitoring of a model: the champion version and the scoring run it looked at, the run
    it compared migrations with, and what it concluded (verdicts, alerts, notes as JSON).
    ``job_id`` (unique when set): a rerun of a job finds its monitoring instead of adding one."""

    __tablename__ = "monitoring_runs"
    __table_args__ = (
        Index("ix_monitoring_model", "model_name", "as_of"),
        Index("uq_monitoring_job", "job_id", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    run_id: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[dt.date] = mapped_column(Date)
    previous_run_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    job_id: Mapped[str | None] = mapped_column(String(64))
    n_alerts: Mapped[int] = mapped_column(Integer, default=0)
    verdicts: Mapped[str] = mapped_column(JSONText)
    alerts: Mapped[str] = mapped_column(JSONText)
    notes: Mapped[str] = mapped_column(JSONText)


class MonitoringMetric(Base):
    """One figure of a monitoring, in long form: the report's table (``section``), the row
    (position ``row_index``; ``key``, a grade, feature, bin or date), the column (``name``), and
    the number (``value``) or the verdict or other text (``verdict``). A report's tables are
    drawn again from these rows."""

    __tablename__ = "monitoring_metrics"
    __table_args__ = (Index("ix_monitoring_metrics", "monitoring_id", "section"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    monitoring_id: Mapped[int] = mapped_column(ForeignKey("monitoring_runs.id", ondelete="CASCADE"))
    section: Mapped[str] = mapped_column(String(40))
    row_index: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float | None] = mapped_column(Float)
    verdict: Mapped[str | None] = mapped_column(Text)


class ApiKeyRecord(Base):
    """An API key of the scoring service: its name, role and the first characters of the token
    (``prefix``, to find it) with the sha256 of the whole token; the token itself is never kept.
    A revoked key keeps its row (``revoked_at``, ``revoked_by``); at most one key that is not
    revoked has a given name (unique partial index)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index(
            "uq_api_keys_active_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
        Index("uq_api_keys_prefix", "prefix", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ApiAuditRecord(Base):
    """One call of the scoring service: when, which key and role, the route (its template, never
    the raw path), the customer or warning it was about, the status and outcome, the model version
    that answered and the sha256 of the request body (never the body), and how long it took."""

    __tablename__ = "api_audit"
    __table_args__ = (Index("ix_api_audit_at", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    request_id: Mapped[str] = mapped_column(String(64))
    key_name: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(200))
    target: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(40))
    model_version: Mapped[str | None] = mapped_column(String(100))
    input_sha256: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[float] = mapped_column(Float)
