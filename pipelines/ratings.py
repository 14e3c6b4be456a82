"""Ratings over time: migration matrix between two runs and the watch list (amber and red)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from models.master_scale import MasterScale
from models.validation import MigrationResult, migration_matrix
from pipelines.store import queries

WATCH_LEVELS = ("amber", "red")
LEVEL_RANK = {"green": 0, "watch": 1, "amber": 2, "red": 3}


def migration(
    before: pd.DataFrame, after: pd.DataFrame, scale: MasterScale | None = None
) -> MigrationResult:
    """Grade migration of customers between two runs (frames with customer_id and grade).

    Customers present in only one run (new or exited) are counted in `n_excluded`.
    """
    scale = scale or MasterScale.load()
    pairs = before[["customer_id", "grade"]].merge(
        after[["customer_id", "grade"]],
        on="customer_id",
        how="outer",
        suffixes=("_before", "_after"),
    )
    return migration_matrix(pairs["grade_before"], pairs["grade_after"], scale.grades)


def run_migration(
    engine: Engine, before_run: int, after_run: int, scale: MasterScale | None = None
) -> MigrationResult:
    """Migration matrix between two stored runs."""
    return migration(
        queries.read_scores(engine, before_run), queries.read_scores(engine, after_run), scale
    )


def watchlist(warnings: pd.DataFrame, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Active amber and red warnings, newest first (last as-of, red before amber, then opened).

    With `scores` (customer_id, pd, grade of the latest run) each entry shows the current rating.
    """
    active = warnings["status"].isin(("open", "acknowledged")) & warnings["level"].isin(
        WATCH_LEVELS
    )
    out = warnings.loc[active].assign(_rank=lambda f: f["level"].map(LEVEL_RANK))
    out = out.sort_values(
        ["last_as_of", "_rank", "opened_at", "id"], ascending=[False, False, False, False]
    ).drop(columns="_rank")
    columns = [
        "id",
        "customer_id",
        "level",
        "status",
        "signals",
        "first_as_of",
        "last_as_of",
        "measures",
    ]
    out = out[[c for c in columns if c in out]]
    if scores is not None:
        out = out.merge(scores[["customer_id", "pd", "grade"]], on="customer_id", how="left")
    return out.reset_index(drop=True)


def read_watchlist(engine: Engine, model_name: str | None = None) -> pd.DataFrame:
    """The stored watch list joined with each customer's rating in the latest run."""
    warnings = queries.read_warnings(engine, levels=WATCH_LEVELS)
    latest = queries.latest_run_ids(engine, model_name, n=1)
    scores = queries.read_scores(engine, latest[0]) if latest else None
    return watchlist(warnings, scores)
