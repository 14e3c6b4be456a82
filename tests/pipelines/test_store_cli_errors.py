"""The results store, MLflow and Prefect fail clearly: one error line, a distinct exit code, within
seconds (the subprocess timeouts only guard against a hang), and reading commands never create a
store. Every test runs the real `creditrisk` command in a subprocess."""

from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
from pipelines.store.db import open_store
from pipelines.store.runs import write_scored_run
from pipelines.store.testing import StoreUnavailable, schema_url, temporary_schema
from pipelines.usecases import review
from pipelines.usecases.preflight import check_store
from tests.conftest import assert_clean_error

QUICK = 90  # seconds: a hang guard; the commands answer in a few seconds
REFUSED = "postgresql+psycopg://postgres@127.0.0.1:1/test"
MLFLOW_REFUSED = {"CREDITRISK_MLFLOW_TRACKING_URI": "http://127.0.0.1:1"}
AS_OF = (dt.date(2024, 3, 1), dt.date(2024, 6, 1))


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a hung or firewalled server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def results_url(home: Path) -> str:
    """The default results store of CREDITRISK_HOME ``home``."""
    return f"sqlite:///{(home / 'results.db').resolve()}"


def tracking_uri(home: Path) -> str:
    """The default MLflow tracking store of CREDITRISK_HOME ``home``."""
    return f"sqlite:///{(home / 'mlflow.db').resolve()}"


def scored_run(engine, as_of: dt.date, warnings: list[tuple[str, str]]) -> int:
    """Write one run of customers A, B, C with policy decisions and ``warnings`` (customer,
    level); its id."""
    scored = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "pd": [0.01, 0.05, 0.2],
            "score": [700, 640, 560],
            "grade": ["R2", "R4", "R7"],
            "reasons": ["[]"] * 3,
        }
    )
    decisions = scored[["customer_id"]].assign(
        recommended_limit=2000.0,
        term_days=60,
        conditions="none",
        approval_level="automatic",
        binding_rule="cap",
    )
    flagged = pd.DataFrame(
        {
            "customer_id": [c for c, _ in warnings],
            "level": [lv for _, lv in warnings],
            "signals": ["utilisation_high"] * len(warnings),
            "evidence": ["{}"] * len(warnings),
            "measures": ["[]"] * len(warnings),
        }
    )
    written = write_scored_run(engine, scored, decisions, flagged, "m", "1", as_of, "runner")
    return written.run_id


@pytest.fixture
def store(cli) -> dict[str, object]:
    """The default results store of the `cli` home with two runs and two open warnings."""
    cli.home.mkdir(parents=True)
    engine = open_store(results_url(cli.home))
    runs = [scored_run(engine, AS_OF[0], [("A", "amber"), ("B", "watch")])]
    runs.append(scored_run(engine, AS_OF[1], [("A", "amber"), ("B", "watch")]))
    warnings = review.list_warnings(engine)
    engine.dispose()
    return {"runs": runs, "warnings": sorted(warnings["id"].astype(int))}


# --- the results store: unreachable, malformed, not a store -------------------------------------


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_an_unreachable_database_fails_within_seconds(cli, silent_port, kind):
    url = {
        "refused": REFUSED,
        "silent": f"postgresql+psycopg://postgres@127.0.0.1:{silent_port}/test",
    }[kind]
    result = cli("warnings", "list", env={"CREDITRISK_DATABASE_URL": url}, timeout=QUICK)
    assert_clean_error(result, 3, "CREDITRISK_DATABASE_URL", "did not answer", "Start the database")


@pytest.mark.parametrize(
    "url, why",
    [
        ("notaurl", "Could not parse"),
        ("postgres://postgres@127.0.0.1:port/test", "could not parse it"),
        ("nosuchdialect://postgres@127.0.0.1/test", "Can't load plugin"),
        ("postgresql+pg8000://postgres@127.0.0.1/test", "not installed"),
    ],
)
def test_a_malformed_database_url_is_bad_input_naming_the_variable(cli, url, why):
    result = cli("warnings", "list", env={"CREDITRISK_DATABASE_URL": url}, timeout=QUICK)
    assert_clean_error(result, 2, "'CREDITRISK_DATABASE_URL'", why)


def test_a_malformed_database_url_given_by_option_names_the_option(cli):
    url = "postgres://postgres@127.0.0.1:port/test"
    result = cli("ratings", "watchlist", "--database-url", url, timeout=QUICK)
    line = assert_clean_error(result, 2, "'--database-url'", "could not parse it")
    assert "CREDITRISK_DATABASE_URL" not in line


def test_a_sqlite_file_that_is_not_a_store_is_left_alone(cli, tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table customers (id text)")
    text_file = tmp_path / "notes.db"
    text_file.write_text("not a database\n" * 100)

    result = cli("warnings", "list", "--database-url", f"sqlite:///{other}", timeout=QUICK)
    assert_clean_error(result, 2, str(other), "holds no creditrisk results store")
    with sqlite3.connect(other) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
    assert tables == ["customers"]
    result = cli("warnings", "list", "--database-url", f"sqlite:///{text_file}", timeout=QUICK)
    assert_clean_error(result, 2, "'--database-url'", "not a SQLite database")


def test_writers_add_no_tables_to_another_database_nor_open_a_newer_store(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table customers (id text)")
    with pytest.raises(Conflict, match="1 other table"):
        check_store(f"sqlite:///{other}", create=True)
    newer = tmp_path / "newer.db"
    open_store(f"sqlite:///{newer}").dispose()
    with sqlite3.connect(newer) as conn:
        conn.execute("update alembic_version set version_num = '9999'")
    with pytest.raises(Conflict, match="migration '9999'"):
        check_store(f"sqlite:///{newer}", create=False)


@pytest.mark.postgres
def test_a_postgres_database_without_a_store_is_not_found_and_left_empty(cli):
    try:
        with temporary_schema() as schema:
            url = schema_url(schema)
            result = cli("warnings", "list", "--database-url", url, timeout=QUICK)
            assert_clean_error(result, 2, f"schema {schema}", "holds no creditrisk results store")
            engine = sa.create_engine(url)
            assert sa.inspect(engine).get_table_names() == []
            check_store(url, create=True).dispose()  # a writer makes the store; then it reads
            assert "alembic_version" in sa.inspect(engine).get_table_names()
            engine.dispose()
            listed = cli("warnings", "list", "--database-url", url, timeout=QUICK)
            assert (listed.returncode, listed.stdout.strip()) == (0, "no warnings match")
    except StoreUnavailable as exc:
        pytest.skip(f"{exc}; start it or set CREDITRISK_TEST_POSTGRES_URL")


# --- reading commands never create a store --------------------------------------------------------

READERS = [
    ("warnings", "list"),
    ("warnings", "show", "1"),
    ("warnings", "ack", "1", "-u", "ann", "-n", "called"),
    ("warnings", "resolve", "1", "-u", "ann", "-n", "paid"),
    ("policy", "override", "A", "--limit", "5000", "-u", "ann", "-r", "guarantor"),
    ("ratings", "migration"),
    ("ratings", "watchlist"),
    ("ratings", "runs"),
    ("decisions", "reproduce", "1"),
]


@pytest.mark.parametrize("command", READERS, ids=lambda c: " ".join(c[:2]))
def test_a_mistyped_store_path_is_not_found_and_not_created(cli, tmp_path, command):
    typo = tmp_path / "typo.db"
    result = cli(*command, "--database-url", f"sqlite:///{typo}", timeout=QUICK)
    assert_clean_error(result, 2, str(typo), "no results store there", "--database-url")
    assert not typo.exists()


def test_the_run_summary_reads_the_store_without_creating_one(tmp_path, store, cli):
    missing = tmp_path / "missing" / "results.db"
    with pytest.raises(NotFound, match="no results store there"):
        review.warning_counts(f"sqlite:///{missing}")
    assert not missing.parent.exists()
    assert review.warning_counts(results_url(cli.home)) == {"watch": 1, "amber": 1, "red": 0}


def test_a_warning_shows_its_history_of_runs(store, cli):
    shown = cli("warnings", "show", str(store["warnings"][0]), timeout=QUICK)
    assert shown.returncode == 0, shown.stderr
    assert "customer A, level amber" in shown.stdout
    history = [line for line in shown.stdout.splitlines() if "utilisation_high" in line]
    assert [line.split()[1] for line in history if line.split()[1][:4] == "2024"] == [
        "2024-03-01", "2024-06-01"
    ]  # fmt: skip
    missing = cli("warnings", "show", "999", timeout=QUICK)
    assert_clean_error(missing, 2, "'WARNING_ID'", "no warning with id 999")


def test_a_run_before_traced_runs_or_missing_cannot_be_reproduced(store, cli):
    missing = cli("decisions", "reproduce", "999", timeout=QUICK)
    assert_clean_error(missing, 2, "'RUN_ID'", "no scoring run with id 999")
    untraced = cli("decisions", "reproduce", str(store["runs"][0]), timeout=QUICK)
    assert_clean_error(untraced, 2, "before runs recorded their configuration and snapshot")


# --- a read-only CREDITRISK_HOME ----------------------------------------------------------------


@pytest.fixture
def readonly_home(tmp_path):
    """A CREDITRISK_HOME nothing can be written in: a 555 folder, or for root (whom permissions
    do not stop) a path under a regular file."""
    if os.geteuid() == 0:
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        yield blocker / "home"
        return
    home = tmp_path / "home"
    home.mkdir()
    open_store(results_url(home)).dispose()
    home.chmod(0o555)
    yield home
    home.chmod(0o755)


@pytest.mark.parametrize(
    "command",
    [("models", "history"), ("promote", "1", "--approver", "bob"), ("run", "--customers", "100")],
    ids=lambda c: c[0],
)
def test_a_read_only_home_is_named(cli, readonly_home, command):
    result = cli(*command, env={"CREDITRISK_HOME": str(readonly_home)}, timeout=QUICK)
    assert_clean_error(result, 3, str(readonly_home), "CREDITRISK_HOME")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a 555 folder: no read-only store")
def test_a_store_in_a_read_only_folder_is_named(cli, readonly_home):
    result = cli("warnings", "list", env={"CREDITRISK_HOME": str(readonly_home)}, timeout=QUICK)
    assert_clean_error(result, 3, str(readonly_home), "cannot write")


# --- MLflow: unreachable, hung, malformed ---------------------------------------------------------


@pytest.fixture
def tiny_table(tmp_path) -> Path:
    """A flat table of 600 rows that trains in seconds."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=600), rng.uniform(size=600)
    y = (rng.random(600) < 1 / (1 + np.exp(1.5 - 1.2 * x1 - x2))).astype(int)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "y": y})
    path = tmp_path / "tiny.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "command",
    [("models", "history"), ("promote", "1", "--approver", "bob"), ("train", "--data")],
    ids=lambda c: c[0],
)
def test_an_unreachable_mlflow_server_fails_within_seconds(cli, tiny_table, command):
    if command[0] == "train":
        command = (*command, str(tiny_table), "--target", "y")
    result = cli(*command, env=MLFLOW_REFUSED, timeout=QUICK + 30)
    assert_clean_error(result, 3, "CREDITRISK_MLFLOW_TRACKING_URI", "Connection refused")


def test_a_hung_mlflow_server_fails_after_a_few_retries(cli, silent_port):
    uri = {"CREDITRISK_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{silent_port}"}
    result = cli("models", "history", env=uri, timeout=QUICK)
    assert_clean_error(result, 3, "CREDITRISK_MLFLOW_TRACKING_URI", "Read timed out")


@pytest.mark.parametrize(
    "uri, why",
    [
        ("notauri", "file store"),
        ("nosuchscheme://host/x", "MLflow supports the schemes"),
        ("http://127.0.0.1:port", "Port could not be cast"),
        ("http://", "names no host"),
    ],
)
def test_a_malformed_tracking_uri_is_bad_input(cli, uri, why):
    result = cli("models", "history", env={"CREDITRISK_MLFLOW_TRACKING_URI": uri}, timeout=QUICK)
    assert_clean_error(result, 2, "'CREDITRISK_MLFLOW_TRACKING_URI'", why)


# --- promote: not found, refused ------------------------------------------------------------------


@pytest.fixture
def registry(cli, tmp_path):
    """The home's MLflow registry with model `m` version 1: AUC 0.5, trained by alice."""
    from mlflow.tracking import MlflowClient

    cli.home.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(cli.home)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")
    tags = {"auc": "0.5", "psi": "0.1", "trained_by": "alice", "jeffreys_red": "0"}
    client.create_model_version("m", source=str(tmp_path), tags=tags)
    return client


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("1", "--model", "nosuch"), ("'--model'", "no registered model 'nosuch'")),
        (("7", "--model", "m"), ("'VERSION'", "model 'm' has no version 7")),
        (("seven", "--model", "m"), ("'VERSION'", "'seven' is not a version number")),
    ],
)
def test_promoting_what_does_not_exist_is_named(cli, registry, args, fragments):
    result = cli("promote", *args, "--approver", "bob", timeout=QUICK)
    assert_clean_error(result, 2, *fragments)


def test_a_refused_promotion_exits_1_with_its_reasons(cli, registry):
    result = cli("promote", "1", "--model", "m", "--approver", "bob", timeout=QUICK)
    assert_clean_error(result, 1, "m v1 stays as it is", "AUC 0.5000 below the minimum 0.6500")


# --- overrides, migrations, warnings ----------------------------------------------------------


@pytest.mark.parametrize(
    "option, value",
    [
        ("--limit", "inf"),
        ("--limit", "nan"),
        ("--limit", "1e400"),
        ("--limit", "1e13"),
        ("--term-days", "-3"),
    ],
)
def test_an_override_out_of_range_names_the_option_before_opening_the_store(cli, option, value):
    values = {"--limit": "5000", "--term-days": "30", option: value}
    args = [a for opt, v in values.items() for a in (opt, v)]
    result = cli("policy", "override", "A", *args, "-u", "ann", "-r", "guarantor", timeout=QUICK)
    assert_clean_error(result, 2, f"'{option}'")
    assert not (cli.home / "results.db").exists()


def test_an_override_of_an_unknown_customer_is_not_found(cli, store):
    result = cli("policy", "override", "Z", "--limit", "5000", "-u", "ann", "-r", "x")
    assert_clean_error(result, 2, "customer Z has no policy decision")
    ok = cli("policy", "override", "A", "--limit", "5000", "-u", "ann", "-r", "guarantor")
    assert ok.returncode == 0, ok.stderr


def test_migration_between_runs_that_do_not_exist_is_not_found(cli, store):
    first, second = store["runs"]
    result = cli("ratings", "migration", "--from", "999", "--to", "1000")
    assert_clean_error(result, 2, "'--from'", "no scoring run with id 999", "ratings runs")
    result = cli("ratings", "migration", "--from", str(first), "--to", "0")
    assert_clean_error(result, 2, "'--to'", "no scoring run with id 0")
    listed = cli("ratings", "runs")
    assert listed.returncode == 0, listed.stderr
    assert "2 current scoring runs" in listed.stdout
    rows = [line.split("│") for line in listed.stdout.splitlines() if "│" in line]
    cells = {tuple(c.strip() for c in row[1:5]) for row in rows}
    expected = zip(store["runs"], AS_OF, strict=True)
    assert {(str(run), str(day), "m", "1") for run, day in expected} <= cells
    ok = cli("ratings", "migration", "--from", str(first), "--to", str(second))
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(
    "option, value, allowed",
    [("--level", "purple", "watch, amber, red"), ("--status", "closed", "open, acknowledged")],
)
def test_an_unknown_filter_names_the_option_and_the_values(cli, option, value, allowed):
    result = cli("warnings", "list", option, value, timeout=QUICK)
    assert_clean_error(result, 2, f"'{option}'", repr(value), allowed)


def test_acknowledging_or_resolving_what_cannot_be_is_refused(cli, store):
    result = cli("warnings", "ack", "999", "-u", "ann", "-n", "called")
    assert_clean_error(result, 2, "no warning with id 999")
    warning = str(store["warnings"][0])
    resolved = cli("warnings", "resolve", warning, "-u", "ann", "-n", "paid")
    assert resolved.returncode == 0, resolved.stderr
    for action in ("ack", "resolve"):
        result = cli("warnings", action, warning, "-u", "ann", "-n", "again")
        assert_clean_error(result, 2, f"warning {warning} is resolved")


# --- Prefect's ephemeral API server -----------------------------------------------------------


def test_the_quiet_environment_gives_the_ephemeral_prefect_server_time_to_start():
    code = (
        "from pipelines.settings import quiet_environment; quiet_environment(); "
        "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as s; "
        "print(s.value())"
    )
    environment = {
        k: v
        for k, v in os.environ.items()
        if k != "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True
    )
    assert int(out.stdout.strip().splitlines()[-1]) >= 60


def test_a_prefect_server_that_does_not_start_says_what_to_do(cli):
    env = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "0"}
    result = cli("run", "--customers", "100", "--months", "30", env=env, timeout=QUICK + 60)
    assert_clean_error(
        result, 3, "'PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS'", "PREFECT_API_URL"
    )
