"""`creditrisk train`: every bad table, file or option gives one readable error line and exit 2,
never a traceback; rows without a target and probable leaks are left out and said so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import assert_clean_error, run_cli

BAD_INPUT = 2


def credit_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A tiny flat credit table: an id, two features (one with signal), dates, a 0/1 target."""
    rng = np.random.default_rng(seed)
    util = rng.uniform(0, 1.2, n)
    default = (rng.random(n) < 1 / (1 + np.exp(2.5 - 2.5 * util))).astype(int)
    return pd.DataFrame(
        {
            "loan_id": [f"L{i:04d}" for i in range(n)],
            "util": util,
            "noise": rng.normal(size=n),
            "as_of": pd.date_range("2020-01-01", periods=6, freq="QS")[rng.integers(0, 6, n)],
            "default": default,
        }
    )


def write(tmp_path, frame: pd.DataFrame, name: str = "loans.csv", **options) -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False, **options)
    return str(path)


def train(cli, path: str, *options: str):
    return cli("train", "--data", path, *options)


def test_a_target_column_that_does_not_exist_is_named(cli, tmp_path):
    result = train(cli, write(tmp_path, credit_table()), "--target", "defualt")
    assert_clean_error(
        result, BAD_INPUT, "loans.csv", "'defualt'", "not in the table", "Did you mean 'default'?"
    )


@pytest.mark.parametrize(
    ("codes", "named"),
    [({0: "no", 1: "yes"}, "'yes' ("), ({0: 1, 1: 2}, "2 (")],
    ids=["yes-no", "1-2"],
)
def test_a_target_that_is_not_0_1_is_refused_naming_its_values(cli, tmp_path, codes, named):
    """The CLI's line; every kind of code (0/1/2, free text) is in the unit tests."""
    table = credit_table()
    table["default"] = table["default"].map(codes)
    result = train(cli, write(tmp_path, table), "--target", "default")
    assert_clean_error(result, BAD_INPUT, "'default'", "must be 0/1", named, "Recode it")


@pytest.mark.parametrize("defaults", [0, 1])
def test_a_single_class_or_a_single_default_is_refused_with_the_counts(cli, tmp_path, defaults):
    table = credit_table().assign(default=(np.arange(600) < defaults).astype(int))
    result = train(cli, write(tmp_path, table), "--target", "default")
    counts = f"{defaults} defaults (target 1) and {600 - defaults} non-defaults (target 0)"
    assert_clean_error(result, BAD_INPUT, counts, "at least 10 of each are needed")


@pytest.mark.parametrize(("rows", "reason"), [(1, "1 labelled rows"), (0, "no rows")])
def test_a_one_row_or_header_only_table_is_refused(cli, tmp_path, rows, reason):
    result = train(cli, write(tmp_path, credit_table().head(rows)), "--target", "default")
    assert_clean_error(result, BAD_INPUT, "loans.csv", reason)


def test_a_table_too_small_for_lightgbm_is_refused_with_the_rows_needed(cli, tmp_path):
    result = train(cli, write(tmp_path, credit_table(200)), "--target", "default")
    assert_clean_error(result, BAD_INPUT, "too few rows to train", "Give at least about")


@pytest.mark.parametrize(
    ("content", "name", "fragments"),
    [
        (bytes(range(256)) * 8, "loans.csv", ("binary content, not CSV text",)),
        ("loan_id,région,default\nL1,Genève,0\n".encode("latin-1"), "loans.csv", ("0xe9",)),
        (b"PK\x03\x04 a spreadsheet", "loans.xlsx", ("expected a .csv, .csv.gz or .parquet",)),
        (b"not parquet at all", "loans.parquet", ("not a readable Parquet file",)),
    ],
    ids=["binary", "latin-1", "not-csv", "not-parquet"],
)
def test_an_unreadable_file_is_refused_naming_it(cli, tmp_path, content, name, fragments):
    path = tmp_path / name
    path.write_bytes(content)
    result = train(cli, str(path), "--target", "default")
    assert_clean_error(result, BAD_INPUT, name, *fragments)


def test_a_semicolon_separated_file_is_refused_naming_the_separator(cli, tmp_path):
    result = train(cli, write(tmp_path, credit_table(), sep=";"), "--target", "default")
    assert_clean_error(result, BAD_INPUT, "loans.csv", "separated by ';'", "commas")


@pytest.mark.parametrize(
    ("option", "role"), [("--time", "time"), ("--id", "id"), ("--exclude", "excluded")]
)
def test_an_option_naming_a_missing_column_is_refused(cli, tmp_path, option, role):
    path = write(tmp_path, credit_table())
    result = train(cli, path, "--target", "default", option, "nowhere")
    assert_clean_error(result, BAD_INPUT, "'nowhere'", f"the {role} column is not in the table")


def test_a_time_column_that_is_not_a_date_is_refused(cli, tmp_path):
    path = write(tmp_path, credit_table())
    result = train(cli, path, "--target", "default", "--time", "loan_id")
    assert_clean_error(result, BAD_INPUT, "'loan_id'", "not a date column", "'L0000'")


@pytest.mark.parametrize(("rows", "reason"), [(0, "no rows"), (40, "no row has a target")])
def test_empty_or_immature_snapshots_are_refused(cli, tmp_path, rows, reason):
    from features.io import write_snapshots

    snapshots = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(rows)],
            "as_of": pd.Timestamp("2024-01-01"),
            "days_past_due_max_12m": np.arange(rows, dtype=float),
            "default_flag": np.nan,
        }
    )
    path = write_snapshots(snapshots, tmp_path / "snapshots.parquet")
    result = cli("train", "--snapshots", str(path))
    assert_clean_error(result, BAD_INPUT, "snapshots.parquet", reason)


def test_a_table_of_nothing_but_leaks_is_refused(cli, tmp_path):
    table = credit_table()[["loan_id", "default"]].assign(recovered=lambda t: t["default"] * 2)
    result = train(cli, write(tmp_path, table), "--target", "default")
    assert_clean_error(result, BAD_INPUT, "no column is usable", "'recovered' probable leak")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real training run on a table with 60 unlabelled rows and a leak of the target."""
    folder = tmp_path_factory.mktemp("trained")
    table = credit_table().assign(recovered=lambda t: t["default"] * 2.0)
    table["default"] = table["default"].astype(float)
    table.loc[::10, "default"] = np.nan
    path = write(folder, table)
    result = run_cli("train", "--data", path, "--target", "default", home=folder / "home")
    return result, folder / "home"


def test_rows_without_a_target_are_reported_with_their_share(trained):
    result, _home = trained
    assert result.returncode == 0, result.stdout + result.stderr
    assert "left out 60 rows without a target (10.0% of the table)" in result.stdout


def test_a_leak_is_left_out_before_training_and_recorded_in_mlflow(trained):
    from mlflow.tracking import MlflowClient

    result, home = trained
    assert result.returncode == 0, result.stdout + result.stderr
    assert "probable leaks of the target: recovered (AUC 1.000 alone)" in result.stdout
    client = MlflowClient(f"sqlite:///{(home / 'mlflow.db').resolve()}")
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id.split())
    assert run.data.params["leaks_dropped"] == "recovered (AUC 1.0000)"
    assert run.data.params["n_dropped_unlabelled"] == "60"
