"""Ratings over time: migration matrix between two runs and the watch list (amber and red).

Pure functions of frames; `pipelines.store.queries` applies them to stored runs.
"""

from __future__ import annotations

import pandas as pd

from models.master_scale import MasterScale
from models.validation import MigrationResult, migration_matrix
from pipelines.decisions.early_warning import RANK

WATCH_LEVELS = ("amber", "red")


def migration(
    before: pd.DataFrame, after: pd.DataFrame, scale: MasterScale | None = None
) -> MigrationResult:
    """Grade migration of customers between two runs (frames with customer_id and grade).

    Customers present in only one run (new or exited) and customers already in default in the
    first (the default grade is absorbing: no cure) are counted in `n_excluded`; moves into the
    default grade are the defaults between the runs.
    """
    scale = scale or MasterScale.load()
    pairs = before[["customer_id", "grade"]].merge(
        after[["customer_id", "grade"]],
        on="customer_id",
        how="outer",
        suffixes=("_before", "_after"),
    )
    was_in_default = pairs["grade_before"] == scale.default_grade
    before_grade = pairs["grade_before"].where(~was_in_default)
    return migration_matrix(before_grade, pairs["grade_after"], scale.grades)


def watchlist(warnings: pd.DataFrame, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Active amber and red warnings, newest first (last as-of, red before amber, then opened).

    With `scores` (customer_id, pd, grade of the latest run) each entry shows the current rating.
    """
    active = warnings["status"].isin(("open", "acknowledged")) & warnings["level"].isin(
        WATCH_LEVELS
    )
    out = warnings.loc[active].assign(_rank=lambda f: f["level"].map(RANK))
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
