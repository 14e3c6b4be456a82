"""Monitoring over a small synthetic book with a real champion in MLflow and stored scoring runs:
every section computed and checked against the figures recomputed here, the report stored with
its history and read back, metrics on the champion's MLflow run; a first run with no matured
cohort says so and reports the rest; no champion or no run is `NotFound`; the commands."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.io import write_book
from features.labels import LABEL, build_labels, observed_until
from features.snapshots import build_snapshots
from features.synthetic import generate_book
from models import validation as v
from models.registry import CHAMPION, load_scorer
from models.tracking import connect, log_training
from models.training import train_from_snapshots
from pipelines.cli.root import app
from pipelines.errors import NotFound
from pipelines.store import queries
from pipelines.store.db import open_store
from pipelines.store.monitoring import (
    long_form,
    read_monitoring,
    tables_from_long,
    write_monitoring,
)
from pipelines.store.runs import write_scored_runs
from pipelines.usecases.monitoring import (
    MonitorRequest,
    load_report,
    monitor,
    monitoring_history,
)
from pipelines.usecases.scoring import DecisionConfig, ScoringRequest, decide_dates

pytestmark = pytest.mark.xdist_group("monitoring")

MODEL = "creditrisk-monitoring-test"
START = pd.Timestamp("2021-01-01")
MONTHS_BEFORE = (15, 12, 3, 0)  # scoring dates before the book's end: two matured, two not
runner = CliRunner(env={"COLUMNS": "200"})


def _store(path, book, dates) -> str:
    """A results store holding the scoring runs of ``dates`` (one batch, oldest first)."""
    url = f"sqlite:///{path}"
    engine = open_store(url)
    request = ScoringRequest(MODEL, book.version, book.uri, url, "runner", DecisionConfig.load())
    frame = book.scoring[book.scoring["as_of"].isin(dates)]
    scored = decide_dates(frame, book.scorer, engine, request)
    write_scored_runs(engine, scored, MODEL, book.version, "runner")
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A 1,500-customer book on disk, a champion in MLflow and a store with four scoring runs."""
    root = tmp_path_factory.mktemp("monitoring")
    tables = generate_book(1_500, 36, start=f"{START:%Y-%m-%d}", seed=3)
    observed = observed_until(tables)
    training = build_snapshots(tables, [START + pd.DateOffset(months=m) for m in (15, 18, 21, 24)])
    dates = [observed - pd.DateOffset(months=m) for m in MONTHS_BEFORE]
    result = train_from_snapshots(training, n_estimators=30)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracked = log_training(result, experiment="monitoring-test", model_name=MODEL,
                           dataset="monitoring-test", trained_by="alice", tracking_uri=uri,
                           artifact_root=root / "mlartifacts")  # fmt: skip
    client = connect(uri)
    client.set_registered_model_alias(MODEL, CHAMPION, tracked.version)
    write_book(tables, root / "book")
    found = SimpleNamespace(
        tables=tables, dates=dates, uri=uri, version=tracked.version, run=tracked.run_id,
        scorer=load_scorer(client, MODEL, tracked.version), result=result, root=root,
        scoring=build_snapshots(tables, dates, with_defaulted=True), book_dir=root / "book",
    )  # fmt: skip
    found.url = _store(root / "results.db", found, dates)
    return found


@pytest.fixture(scope="module")
def report(book):
    return monitor(MonitorRequest(MODEL, book.uri, book.url, book.book_dir))


def _runs(url: str) -> pd.DataFrame:
    engine = open_store(url, create=False)
    try:
        return queries.list_runs(engine, MODEL).sort_values("as_of", ignore_index=True)
    finally:
        engine.dispose()


def _scores(url: str, run_id: int) -> pd.DataFrame:
    engine = open_store(url, create=False)
    try:
        scores = queries.read_scores(engine, run_id)
    finally:
        engine.dispose()
    return scores[scores["grade"] != "D"]


def test_every_section_is_computed_and_agrees_with_the_figures_recomputed_here(book, report):
    runs = _runs(book.url)
    assert (report.run_id, report.previous_run_id) == (runs["id"].iloc[-1], runs["id"].iloc[-2])
    assert report.model_version == book.version
    checks = ["score_psi", "csi", "migration", "concentration", "auc", "calibration", "binomial",
              "warnings", "expected_auc"]  # fmt: skip
    assert set(report.verdicts) >= set(checks)
    assert "not computed" not in report.verdicts.values(), report.notes
    metrics = report.metrics

    # score PSI: the champion's scores of its test rows against the run's performing customers
    test = book.result.test_frame
    reference = book.scorer.score_frame(test.drop(columns=[book.result.target]), reasons=False)
    current = _scores(book.url, report.run_id)
    assert metrics["score_psi"] == pytest.approx(v.psi(reference["score"], current["score"]))
    assert report.verdicts["score_psi"] == v.psi_verdict(metrics["score_psi"])
    csi = report.tables["csi"]
    assert csi["psi"].is_monotonic_decreasing and set(csi["feature"]) <= set(test.columns)

    # backtest: the two matured cohorts; the latest one's AUC from the book's own labels
    backtest = report.tables["backtest"]
    assert backtest["run_id"].tolist() == runs["id"].iloc[:2].tolist()
    as_of = book.dates[1]
    labels = build_labels(book.tables, as_of).astype({"customer_id": str})
    cohort = _scores(book.url, int(runs["id"].iloc[1])).merge(labels, on="customer_id")
    assert len(cohort) == backtest["n"].iloc[-1]
    assert metrics["auc"] == pytest.approx(v.auc(cohort[LABEL], cohort["pd"]))
    assert metrics["default_rate"] == pytest.approx(cohort[LABEL].mean())
    assert metrics["auc_approval"] == pytest.approx(v.auc(test[book.result.target],
                                                          reference["pd"]))  # fmt: skip
    calibration = report.tables["calibration"]
    assert calibration["n"].sum() == len(cohort)
    assert calibration["defaults"].sum() == cohort[LABEL].sum()
    worst = {"red": 2, "yellow": 1, "green": 0}
    assert report.verdicts["calibration"] == max(calibration["light"], key=worst.get)

    # migration between the last two runs; concentration now and at approval
    migration = report.tables["migration"].set_index("before")
    assert migration.to_numpy().sum() == metrics["migrated_n"]
    assert 0 <= metrics["mwb_lower"] <= 1 and 0 <= metrics["mwb_upper"] <= 1
    assert metrics["hhi"] == pytest.approx(np.sum(current["grade"].value_counts(normalize=True)
                                                    ** 2))  # fmt: skip

    # early warnings on both matured cohorts (every customer at one level); expected figures
    levels = report.tables["warning_levels"]
    assert levels["rows"].sum() == backtest["n"].sum()
    assert levels["level"].tolist() == ["green", "watch", "amber", "red"]
    expected = report.tables["expected"]
    assert (
        expected.loc[expected["kind"] == "expected", "run_id"].tolist()
        == runs["id"].iloc[2:].tolist()
    )
    mine = expected[(expected["run_id"] == report.run_id) & (expected["kind"] == "expected")]
    assert mine["default_rate"].iloc[0] == pytest.approx(current["pd"].mean())
    assert expected.loc[expected["kind"] == "realised", "auc"].tolist() == [metrics["auc"]]

    assert report.ok == (report.alerts == [])
    assert set(report.figures) == {"score_distribution", "calibration_by_grade"}
    assert all(png.startswith(b"\x89PNG") for png in report.figures.values())
    text = report.markdown()
    assert "## Calibration by grade" in text and f"run {report.previous_run_id}" in text


def test_the_report_is_stored_with_history_and_logged_on_the_champions_run(book, report):
    again = load_report(book.url, report.monitoring_id)
    assert (again.verdicts, again.alerts, again.notes) == (report.verdicts, report.alerts,
                                                           report.notes)  # fmt: skip
    assert set(again.tables) == set(report.tables)
    for name, frame in report.tables.items():
        pd.testing.assert_frame_equal(again.tables[name], frame, check_dtype=False, obj=name)
    assert again.markdown() == report.markdown()
    history = monitoring_history(book.url, MODEL)
    row = history.set_index("id").loc[report.monitoring_id]
    assert row["score_psi"] == report.verdicts["score_psi"] and row["n_alerts"] == len(
        report.alerts
    )

    client = connect(book.uri)
    logged = client.get_metric_history(book.run, "monitoring_score_psi")
    assert [(m.step, m.value) for m in logged] == [
        (report.monitoring_id, pytest.approx(report.metrics["score_psi"]))
    ]
    artifacts = {
        f.path for f in client.list_artifacts(book.run, f"monitoring/{report.monitoring_id}")
    }
    assert f"monitoring/{report.monitoring_id}/report.md" in artifacts


def test_a_first_run_with_no_matured_cohort_says_so_and_reports_the_rest(book, tmp_path):
    url = _store(tmp_path / "fresh.db", book, book.dates[-1:])
    report = monitor(MonitorRequest(MODEL, book.uri, url, book.book_dir))
    assert report.previous_run_id is None
    notes = " ".join(report.notes)
    assert "first run" in notes and "no matured cohort" in notes
    assert report.verdicts["migration"] == "no previous run"
    assert report.verdicts["auc"] == report.verdicts["calibration"] == "not matured"
    assert report.verdicts["score_psi"] in ("stable", "investigate", "shift")
    assert report.tables["expected"]["kind"].tolist() == ["expected"]
    assert "backtest" not in report.tables and "migration" not in report.tables
    assert set(report.figures) == {"score_distribution"}
    assert len(monitoring_history(url)) == 1

    without_book = monitor(MonitorRequest(MODEL, book.uri, url, None))
    assert any("no book given" in note for note in without_book.notes)
    assert without_book.monitoring_id == report.monitoring_id + 1


def test_no_champion_or_no_run_is_not_found(book, tmp_path):
    with pytest.raises(NotFound, match="no champion"):
        monitor(MonitorRequest("no-such-model", book.uri, book.url, None))
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(empty).dispose()
    with pytest.raises(NotFound, match="no scoring run"):
        monitor(MonitorRequest(MODEL, book.uri, empty, None))
    with pytest.raises(NotFound, match="no scoring run 999"):
        monitor(MonitorRequest(MODEL, book.uri, book.url, None, run_id=999))
    with pytest.raises(NotFound, match="no results store"):
        monitor(MonitorRequest(MODEL, book.uri, f"sqlite:///{tmp_path / 'none.db'}", None))
    with pytest.raises(NotFound, match="no monitoring with id 999"):
        load_report(book.url, 999)


def test_a_rerun_of_a_job_returns_the_monitoring_it_stored(book, tmp_path):
    url = _store(tmp_path / "job.db", book, book.dates[-2:])
    request = MonitorRequest(MODEL, book.uri, url, None, job_id="job-1")
    first, second = monitor(request), monitor(request)
    assert second.monitoring_id == first.monitoring_id and second.verdicts == first.verdicts
    assert len(monitoring_history(url)) == 1
    older = monitor(MonitorRequest(MODEL, book.uri, url, None, run_id=first.previous_run_id))
    assert older.run_id == first.previous_run_id and older.previous_run_id is None


def test_the_commands_list_and_show_stored_reports(book, report, tmp_path, wide_console):
    listed = runner.invoke(app, ["monitoring", "history", "--database-url", book.url])
    assert listed.exit_code == 0, listed.output
    assert "monitorings" in listed.output and MODEL in listed.output
    out = tmp_path / "report"
    shown = runner.invoke(app, ["monitoring", "show", str(report.monitoring_id),
                                "--database-url", book.url, "--out", str(out)])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert f"monitoring {report.monitoring_id}" in shown.output and "verdicts" in shown.output
    assert (out / "report.md").read_text() == report.markdown()
    assert (out / "score_distribution.png").read_bytes().startswith(b"\x89PNG")
    missing = runner.invoke(app, ["monitoring", "show", "999", "--database-url", book.url])
    assert missing.exit_code == 2 and "no monitoring with id 999" in missing.output


def test_report_tables_go_to_the_store_and_come_back_the_same(engine):
    """Long form on either backend: kinds, missing and infinite values, empty tables, order."""
    tables = {
        "summary": pd.DataFrame({"metric": ["a", "b", "c"], "value": [0.5, np.nan, np.inf],
                                 "verdict": ["stable", None, "shift"]}),
        "mixed": pd.DataFrame({"grade": ["R2", "R1"], "n": [3, 4], "flag": [True, False],
                               "as_of": pd.to_datetime(["2024-01-01", "2024-02-01"]),
                               "share": [0.25, -np.inf]}),
        "empty": pd.DataFrame({"feature": pd.Series(dtype=object), "psi": pd.Series(dtype=float)}),
    }  # fmt: skip
    record = {"model_name": "m", "model_version": "3", "run_id": 7,
              "as_of": pd.Timestamp("2024-03-01").date(), "previous_run_id": None,
              "created_by": "tester", "job_id": None, "n_alerts": 1,
              "verdicts": {"score_psi": "shift"}, "alerts": ["psi"], "notes": []}  # fmt: skip
    monitoring_id = write_monitoring(engine, record, tables)
    stored, metrics = read_monitoring(engine, monitoring_id)
    assert stored["verdicts"] == {"score_psi": "shift"} and stored["alerts"] == ["psi"]
    back = tables_from_long(metrics)
    assert list(back) == list(tables)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(back[name], frame, check_dtype=False, check_index_type=False)
    assert back["mixed"]["n"].dtype == np.int64 and back["mixed"]["flag"].tolist() == [True, False]
    assert len(long_form(tables)) == len(metrics)
    assert json.loads(json.dumps(stored["notes"])) == []
