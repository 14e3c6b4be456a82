"""Monitoring history: one row per monitoring of a model (the run it looked at, its verdicts,
alerts and notes) and its figures in long form, enough to draw the report again.

Revision ID: 0004
Revises: 0003
Create Date: 2027-02-01
"""

import sqlalchemy as sa
from alembic import op

from pipelines.store.tables import JSONText

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("previous_run_id", sa.Integer),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("job_id", sa.String(64)),
        sa.Column("n_alerts", sa.Integer, nullable=False),
        sa.Column("verdicts", JSONText, nullable=False),
        sa.Column("alerts", JSONText, nullable=False),
        sa.Column("notes", JSONText, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_monitoring_model", "monitoring_runs", ["model_name", "as_of"])
    op.create_index("uq_monitoring_job", "monitoring_runs", ["job_id"], unique=True)
    op.create_table(
        "monitoring_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "monitoring_id",
            sa.Integer,
            sa.ForeignKey("monitoring_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("section", sa.String(40), nullable=False),
        sa.Column("row_index", sa.Integer, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("verdict", sa.Text),
    )
    op.create_index("ix_monitoring_metrics", "monitoring_metrics", ["monitoring_id", "section"])


def downgrade() -> None:
    op.drop_index("ix_monitoring_metrics", table_name="monitoring_metrics")
    op.drop_table("monitoring_metrics")
    op.drop_index("uq_monitoring_job", table_name="monitoring_runs")
    op.drop_index("ix_monitoring_model", table_name="monitoring_runs")
    op.drop_table("monitoring_runs")
