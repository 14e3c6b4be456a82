"""One current scoring run per as-of date and model: later runs supersede earlier ones; runs
staged by a job (status pending, their warnings in staged_warnings) until it publishes them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CURRENT = sa.text("status = 'succeeded'")


def upgrade() -> None:
    with op.batch_alter_table("score_runs") as batch:
        batch.drop_constraint("uq_run_key", type_="unique")
        batch.add_column(sa.Column("superseded_by", sa.Integer))
        batch.add_column(sa.Column("superseded_at", sa.DateTime))
        batch.add_column(sa.Column("job_id", sa.String(64)))
    _keep_newest_current()
    op.create_index(
        "uq_runs_current",
        "score_runs",
        ["as_of", "model_name"],
        unique=True,
        sqlite_where=CURRENT,
        postgresql_where=CURRENT,
    )
    op.create_index("ix_runs_job", "score_runs", ["job_id", "status"])
    op.create_table(
        "staged_warnings",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("signals", sa.Text, nullable=False),
        sa.Column("n_signals", sa.Integer, nullable=False),
        sa.Column("evidence", sa.Text),
        sa.Column("measures", sa.Text),
    )


def _keep_newest_current() -> None:
    """Runs written before this revision: the newest of each date and model stays current."""
    op.execute(
        """
        UPDATE score_runs SET status = 'superseded',
            superseded_by = (SELECT max(n.id) FROM score_runs n
                             WHERE n.as_of = score_runs.as_of
                               AND n.model_name = score_runs.model_name
                               AND n.status = 'succeeded')
        WHERE status = 'succeeded' AND id < (SELECT max(n.id) FROM score_runs n
                                             WHERE n.as_of = score_runs.as_of
                                               AND n.model_name = score_runs.model_name
                                               AND n.status = 'succeeded')
        """
    )


def downgrade() -> None:
    op.drop_table("staged_warnings")
    op.drop_index("ix_runs_job", table_name="score_runs")
    op.drop_index("uq_runs_current", table_name="score_runs")
    with op.batch_alter_table("score_runs") as batch:
        batch.drop_column("job_id")
        batch.drop_column("superseded_at")
        batch.drop_column("superseded_by")
        batch.create_unique_constraint("uq_run_key", ["as_of", "model_name", "model_version"])
