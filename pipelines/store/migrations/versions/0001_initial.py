"""Initial results store: runs, scores, decisions, overrides, warnings, events, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-05-10
"""

import sqlalchemy as sa
from alembic import op

from pipelines.store.tables import JSONText

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("n_customers", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.UniqueConstraint("as_of", "model_name", "model_version", name="uq_run_key"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "scores",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("pd", sa.Float, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("grade", sa.String(8), nullable=False),
        sa.Column("reasons", JSONText),
    )
    op.create_table(
        "policy_decisions",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("recommended_limit", sa.Float, nullable=False),
        sa.Column("term_days", sa.Integer, nullable=False),
        sa.Column("conditions", sa.String(100), nullable=False),
        sa.Column("approval_level", sa.String(40), nullable=False),
        sa.Column("binding_rule", sa.String(40), nullable=False),
    )
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("as_of", sa.Date),
        sa.Column("run_id", sa.Integer),
        sa.Column("original_limit", sa.Float),
        sa.Column("override_limit", sa.Float, nullable=False),
        sa.Column("term_days", sa.Integer),
        sa.Column("conditions", sa.String(100)),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_overrides_customer", "overrides", ["customer_id", "created_at"])
    op.create_table(
        "warnings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("latest_level", sa.String(10), nullable=False),
        sa.Column("signals", sa.Text, nullable=False),
        sa.Column("dedupe_key", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("first_as_of", sa.Date, nullable=False),
        sa.Column("last_as_of", sa.Date, nullable=False),
        sa.Column("last_run_id", sa.Integer),
        sa.Column("evidence", JSONText),
        sa.Column("measures", JSONText),
        sa.Column("opened_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("acknowledged_by", sa.String(100)),
        sa.Column("acknowledged_at", sa.DateTime),
        sa.Column("acknowledge_note", sa.Text),
        sa.Column("resolved_by", sa.String(100)),
        sa.Column("resolved_at", sa.DateTime),
        sa.Column("resolution_note", sa.Text),
    )
    op.create_index(
        "uq_warnings_active_customer",
        "warnings",
        ["customer_id"],
        unique=True,
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    )
    op.create_index("ix_warnings_key", "warnings", ["dedupe_key"])
    op.create_index("ix_warnings_status_level", "warnings", ["status", "level"])
    op.create_table(
        "warning_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "warning_id",
            sa.Integer,
            sa.ForeignKey("warnings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("from_level", sa.String(10)),
        sa.Column("to_level", sa.String(10)),
        sa.Column("as_of", sa.Date),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_warning_events_warning", "warning_events", ["warning_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("who", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("what", sa.String(200), nullable=False),
        sa.Column("details", sa.JSON),
    )
    op.create_index("ix_audit_at", "audit_log", ["at"])


def downgrade() -> None:
    for table in ("audit_log", "warning_events", "warnings", "overrides", "policy_decisions",
                  "scores", "score_runs"):  # fmt: skip
        op.drop_table(table)
