"""Traced runs and warning histories: the config texts and scored snapshot of each run (by
content hash), the inputs each policy decision read, and one observation per warning per run.

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-15
"""

import sqlalchemy as sa
from alembic import op

from pipelines.store.tables import JSONText

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RUN_HASHES = ("policy_sha256", "rules_sha256", "scale_sha256", "snapshot_sha256")


def upgrade() -> None:
    op.create_table(
        "decision_configs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("stored_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "scored_snapshots",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("stored_at", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("score_runs") as batch:
        for column in RUN_HASHES:
            batch.add_column(sa.Column(column, sa.String(64)))
    with op.batch_alter_table("policy_decisions") as batch:
        batch.add_column(sa.Column("inputs", JSONText))
    op.create_table(
        "warning_observations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "warning_id",
            sa.Integer,
            sa.ForeignKey("warnings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("run_id", sa.Integer),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("warning_level", sa.String(10), nullable=False),
        sa.Column("signals", sa.Text, nullable=False),
        sa.Column("evidence", JSONText),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index(
        "ix_warning_observations_warning", "warning_observations", ["warning_id", "as_of"]
    )


def downgrade() -> None:
    op.drop_index("ix_warning_observations_warning", table_name="warning_observations")
    op.drop_table("warning_observations")
    with op.batch_alter_table("policy_decisions") as batch:
        batch.drop_column("inputs")
    with op.batch_alter_table("score_runs") as batch:
        for column in RUN_HASHES:
            batch.drop_column(column)
    op.drop_table("scored_snapshots")
    op.drop_table("decision_configs")
