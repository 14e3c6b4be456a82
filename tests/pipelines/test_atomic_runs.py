"""Runs are atomic: killed, interrupted or rerun main jobs leave one complete current run per
date, by the current champion, and no process or RUNNING run behind. Real subprocesses, real
kills (SIGKILL at named failpoints, SIGINT from outside), real Prefect, MLflow and SQLite."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CLI, assert_clean_error

pytestmark = [pytest.mark.e2e]

BOOK = ["--customers", "1500", "--months", "42", "--min-auc", "0.55", "--allow-red-jeffreys"]


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "CREDITRISK_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    env |= {"COLUMNS": "200", "PREFECT_LOGGING_LEVEL": "WARNING"}
    for key in ("MLFLOW_TRACKING_URI", "CREDITRISK_DATABASE_URL", "PREFECT_API_URL"):
        env.pop(key, None)
    return env | extra


def main_job(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """`creditrisk run` to its end; output goes to files, which a killed job's orphans (until
    the next job ends them) cannot hold open as they would a pipe."""
    (home / "prefect").mkdir(parents=True, exist_ok=True)
    out, err = home.parent / "stdout.txt", home.parent / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        done = subprocess.run(
            [str(CLI), "run", *BOOK, *args],
            env=environment(home, **extra),
            stdout=stdout,
            stderr=stderr,
            timeout=900,
            check=False,
        )
    return subprocess.CompletedProcess(done.args, done.returncode, out.read_text(), err.read_text())


def state(home: Path) -> dict:
    """Current runs, pending runs and the champion, read as a user would see them."""
    from models.registry import alias_version
    from models.tracking import connect
    from pipelines.store.db import open_store
    from pipelines.store.queries import list_runs

    engine = open_store(f"sqlite:///{home / 'results.db'}", create=False)
    current = list_runs(engine)
    with engine.connect() as conn:
        statuses = dict(
            conn.exec_driver_sql("select status, count(*) from score_runs group by status").all()
        )
    engine.dispose()
    client = connect(f"sqlite:///{home / 'mlflow.db'}")
    return {
        "current": current,
        "statuses": statuses,
        "champion": alias_version(client, "creditrisk-pd", "champion"),
        "mlflow_running": [
            r.info.run_id
            for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id])
            if r.info.status == "RUNNING"
        ],
    }


def open_flow_runs(home: Path) -> list[str]:
    with sqlite3.connect(home / "prefect" / "prefect.db") as db:
        rows = db.execute("select state_type from flow_run").fetchall()
    return [s for (s,) in rows if s not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")]


def processes_of(job_id: str) -> list[int]:
    from pipelines.flows.guard import processes_of as find

    return find(job_id)


def processes_in(home: Path) -> list[int]:
    """Processes, other than this one, started with CREDITRISK_HOME=home."""
    marker = f"CREDITRISK_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def assert_consistent(home: Path) -> dict:
    seen = state(home)
    current = seen["current"]
    assert not current.empty
    assert not current.duplicated(["as_of", "model_name"]).any()
    assert (current["model_version"] == seen["champion"]).all(), (current, seen["champion"])
    assert seen["statuses"].get("pending", 0) == 0
    assert seen["mlflow_running"] == []
    assert open_flow_runs(home) == []
    return seen


def test_kills_and_reruns_leave_one_current_run_per_date_by_the_champion(tmp_path):
    # Every job trains the same model on the same book, so each new version ties with the
    # champion and is promoted: the kills land with a new champion in the making.
    home = tmp_path / "home"
    first = main_job(home)
    assert first.returncode == 0, first.stderr
    before = assert_consistent(home)
    # the last matured date and the latest two quarters
    assert before["champion"] == "1" and len(before["current"]) == 3

    # Killed after the first date was scored: nothing of it is visible.
    killed = main_job(home, CREDITRISK_FAILPOINT="after-first-date-scored")
    assert killed.returncode == -signal.SIGKILL
    stale = json.loads((home / "job.lock").read_text())
    after_kill = state(home)
    assert after_kill["champion"] == "1"
    assert after_kill["current"]["id"].tolist() == before["current"]["id"].tolist()

    # Killed right after the alias moved: the new champion's runs are staged, not shown.
    killed = main_job(home, CREDITRISK_FAILPOINT="after-promotion")
    assert killed.returncode == -signal.SIGKILL
    after_promotion = state(home)
    assert after_promotion["champion"] == "3"
    assert after_promotion["current"]["id"].tolist() == before["current"]["id"].tolist()
    assert after_promotion["statuses"].get("pending") == 3

    rerun = main_job(home)
    assert rerun.returncode == 0, rerun.stderr
    assert "was killed" in rerun.stdout
    seen = assert_consistent(home)
    assert len(seen["current"]) == 3
    assert seen["statuses"]["superseded"] >= 3
    assert processes_of(stale["job_id"]) == []
    assert processes_in(home) == []


def test_sigint_marks_runs_failed_and_leaves_no_process(tmp_path):
    home = tmp_path / "home"
    (home / "prefect").mkdir(parents=True)
    process = subprocess.Popen(
        [str(CLI), "run", *BOOK],
        env=environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        job_id = wait_for_training(home, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    seen = state(home)
    assert seen["mlflow_running"] == []
    assert open_flow_runs(home) == []
    assert seen["statuses"].get("pending", 0) == 0
    assert processes_of(job_id) == []
    assert processes_in(home) == []
    assert not (home / "job.lock").exists()


def test_sigkill_during_training_is_ended_by_the_next_job(tmp_path):
    home = tmp_path / "home"
    (home / "prefect").mkdir(parents=True)
    with (tmp_path / "killed.txt").open("w") as out:
        process = subprocess.Popen(
            [str(CLI), "run", *BOOK], env=environment(home), stdout=out, stderr=out
        )
        try:
            job_id = wait_for_training(home, process)
            process.kill()
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert state(home)["mlflow_running"] != []
    rerun = main_job(home)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 MLflow run(s) marked KILLED" in rerun.stdout
    assert_consistent(home)
    assert processes_of(job_id) == []
    assert processes_in(home) == []


def wait_for_training(home: Path, process: subprocess.Popen) -> str:
    """The job id, once the job's MLflow training run is RUNNING."""
    database = home / "mlflow.db"
    for _ in range(6000):
        assert process.poll() is None, process.communicate()
        if database.exists():
            with sqlite3.connect(database) as db:
                try:
                    running = db.execute("select 1 from runs where status = 'RUNNING'").fetchall()
                except sqlite3.OperationalError:  # tables not made yet
                    running = []
            if running:
                return json.loads((home / "job.lock").read_text())["job_id"]
        time.sleep(0.1)
    raise AssertionError("the training run never started")


def test_a_bad_store_is_found_before_training(tmp_path, cli):
    result = cli(
        "run",
        *BOOK,
        env={
            "CREDITRISK_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/test",
            "PREFECT_HOME": str(tmp_path / "prefect"),
        },
    )
    assert_clean_error(result, 3, "results store")
    assert not (cli.home / "mlartifacts").exists()
    assert not (cli.home / "snapshots").exists()


def test_a_second_job_on_the_same_folder_is_refused(tmp_path, cli):
    cli.home.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        lock = {"job_id": "other", "pid": sleeper.pid, "started_at": "2026-01-01T00:00:00"}
        (cli.home / "job.lock").write_text(json.dumps(lock))
        result = cli("run", *BOOK, env={"PREFECT_HOME": str(tmp_path / "prefect")})
    finally:
        sleeper.kill()
        sleeper.wait()
    assert_clean_error(result, 2, f"process {sleeper.pid}", "Wait for it to finish")
