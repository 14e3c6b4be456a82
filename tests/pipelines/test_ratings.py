"""Rating migration between runs and the watch list."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipelines.decisions.ratings import migration, watchlist
from pipelines.store.queries import read_warnings, read_watchlist, run_migration
from pipelines.store.runs import write_scored_run


def grades(pairs: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list(pairs), "grade": list(pairs.values())})


def test_migration_counts_moves_and_excludes_new_and_exited():
    before = grades({"A": "R1", "B": "R1", "C": "R3", "D": "R5", "X": "R2"})
    after = grades({"A": "R1", "B": "R2", "C": "R1", "D": "D", "Y": "R4"})
    result = migration(before, after)
    assert result.n == 4 and result.n_excluded == 2
    assert result.counts.loc["R1", "R1"] == 1 and result.counts.loc["R1", "R2"] == 1
    assert result.counts.loc["R3", "R1"] == 1 and result.counts.loc["R5", "D"] == 1
    assert result.rates.loc["R1", "R2"] == 0.5
    assert (result.upgrade_share, result.downgrade_share, result.stable_share) == (0.25, 0.5, 0.25)


def warning_rows() -> pd.DataFrame:
    d = dt.date
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "customer_id": ["A", "B", "C", "D", "E"],
            "level": ["amber", "red", "watch", "red", "amber"],
            "status": ["open", "acknowledged", "open", "resolved", "open"],
            "signals": ["legal_action"] * 5,
            "first_as_of": [d(2024, 5, 1)] * 5,
            "last_as_of": [
                d(2024, 6, 1),
                d(2024, 6, 1),
                d(2024, 6, 1),
                d(2024, 6, 1),
                d(2024, 7, 1),
            ],
            "opened_at": pd.to_datetime(["2024-05-02"] * 5),
            "measures": ["[]"] * 5,
        }
    )


def test_watchlist_is_amber_and_red_active_newest_first():
    out = watchlist(warning_rows())
    assert out["customer_id"].tolist() == ["E", "B", "A"]


def test_stored_runs_migration_and_watchlist(engine):
    def run(as_of, grade_list, levels):
        scored = pd.DataFrame(
            {
                "customer_id": ["A", "B"],
                "pd": [0.01, 0.3],
                "score": [700, 560],
                "grade": grade_list,
                "reasons": ["[]", "[]"],
            }
        )
        warnings = pd.DataFrame(
            {
                "customer_id": ["A", "B"],
                "level": levels,
                "signals": ["x", "y"],
                "evidence": ["{}", "{}"],
                "measures": ["[]", "[]"],
            }
        )
        return write_scored_run(engine, scored, None, warnings, "m", "1", as_of, "runner").run_id

    first = run("2024-05-01", ["R4", "R7"], ["green", "amber"])
    second = run("2024-06-01", ["R4", "R8"], ["red", "amber"])
    result = run_migration(engine, first, second)
    assert result.counts.loc["R7", "R8"] == 1 and result.stable_share == 0.5
    listed = read_watchlist(engine)
    assert listed[["customer_id", "level", "grade"]].values.tolist() == [
        ["A", "red", "R4"],
        ["B", "amber", "R8"],
    ]


def test_migration_counts_defaults_but_not_customers_already_in_default():
    before = grades({"A": "D", "B": "R5", "C": "R2"})
    after = grades({"A": "D", "B": "D", "C": "R2"})
    result = migration(before, after)
    assert (result.n, result.n_excluded) == (2, 1)
    assert result.counts.loc["R5", "D"] == 1 and result.counts.loc["D"].sum() == 0
    assert (result.downgrade_share, result.stable_share) == (0.5, 0.5)


def test_a_customer_in_default_leaves_the_watch_list_for_collections(engine):
    def run(as_of, grade, level, signals):
        scored = pd.DataFrame(
            {"customer_id": ["A"], "pd": [0.3], "score": [560], "grade": [grade], "reasons": ["[]"]}
        )
        warnings = pd.DataFrame(
            {"customer_id": ["A"], "level": [level], "signals": [signals], "evidence": ["{}"],
             "measures": ["[]"]}
        )  # fmt: skip
        write_scored_run(engine, scored, None, warnings, "m", "1", as_of, "runner")

    run("2024-05-01", "R8", "red", "new_delinquency_30")
    assert read_watchlist(engine)["customer_id"].tolist() == ["A"]
    run("2024-06-01", "D", "defaulted", "in_default")
    assert read_watchlist(engine).empty
    defaulted = read_warnings(engine, status=("defaulted",))
    assert defaulted[["customer_id", "level", "latest_level"]].values.tolist() == [
        ["A", "red", "defaulted"]
    ]
