"""A score flow killed (SIGKILL) in the middle of its store write and started again leaves
exactly one complete current run for that date and model, and no flow run left open. A real
`creditrisk score` subprocess, a real kill at the `during-store-write` failpoint."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI
from tests.pipelines.test_flows import make_champion_home

pytestmark = [pytest.mark.e2e]

AS_OF = "2024-04-01"


def score(home: Path, **extra: str) -> subprocess.CompletedProcess:
    """`creditrisk score --as-of AS_OF` to its end, under its own Prefect home."""
    env = {**os.environ, "CREDITRISK_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    env |= {"COLUMNS": "200", "PREFECT_LOGGING_LEVEL": "WARNING"}
    for key in ("MLFLOW_TRACKING_URI", "CREDITRISK_DATABASE_URL", "PREFECT_API_URL"):
        env.pop(key, None)
    out, err = home.parent / "stdout.txt", home.parent / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        done = subprocess.run(
            [str(CLI), "score", "--as-of", AS_OF],
            env=env | extra,
            stdout=stdout,
            stderr=stderr,
            timeout=600,
            check=False,
        )
    return subprocess.CompletedProcess(done.args, done.returncode, out.read_text(), err.read_text())


def runs_of(home: Path) -> list[tuple]:
    """(status, customers, score rows, decision rows) of every run of AS_OF."""
    with sqlite3.connect(home / "results.db") as db:
        return db.execute(
            "select r.status, r.n_customers,"
            " (select count(*) from scores s where s.run_id = r.id),"
            " (select count(*) from policy_decisions d where d.run_id = r.id)"
            " from score_runs r where r.as_of = ? and r.model_name = 'creditrisk-pd'",
            (AS_OF,),
        ).fetchall()


def open_flow_runs(home: Path) -> list[str]:
    with sqlite3.connect(home / "prefect" / "prefect.db") as db:
        rows = db.execute("select state_type from flow_run").fetchall()
    return [s for (s,) in rows if s not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")]


def test_a_score_killed_during_the_store_write_reruns_to_one_complete_run(tmp_path):
    home = tmp_path / "home"
    make_champion_home(home)
    (home / "prefect").mkdir(parents=True)

    killed = score(home, CREDITRISK_FAILPOINT="during-store-write")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert runs_of(home) == []  # the transaction never committed
    assert open_flow_runs(home) == ["RUNNING"]  # what the UI shows until the next job

    rerun = score(home)
    assert rerun.returncode == 0, rerun.stderr
    (run,) = runs_of(home)
    status, customers, n_scores, n_decisions = run
    assert status == "succeeded"
    assert customers > 0 and n_scores == n_decisions == customers
    assert open_flow_runs(home) == []  # the killed one marked Crashed by the rerun

    again = score(home)
    assert again.returncode == 0, again.stderr
    assert "already current: nothing written" in again.stdout
    assert runs_of(home) == [run]
