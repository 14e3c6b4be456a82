"""End to end: the main Prefect flow on a small synthetic book, with real MLflow and SQLite."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select

from pipelines.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("prefect")]


@pytest.fixture(scope="module")
def finished(prefect_harness, tmp_path_factory):
    """One run of the main flow on 3,000 customers over 48 months."""
    from models.registry import Gates
    from pipelines.flows.main import main_flow
    from pipelines.usecases.book import GenerateRequest
    from pipelines.usecases.main_job import MainJobRequest
    from pipelines.usecases.scoring import DecisionConfig

    # Per-grade Jeffreys tests on a 3,000-customer test window are too noisy to gate on; the
    # gate itself is tested in tests/models/test_registry.py.
    gates = Gates(allow_red_jeffreys=True)
    home = tmp_path_factory.mktemp("creditrisk-home")
    settings = Settings(home=home)
    request = MainJobRequest(book=GenerateRequest(customers=3_000, months=48, seed=42), gates=gates)
    state = main_flow(settings, request, DecisionConfig.load(), return_state=True)
    return settings, state


def test_flow_completes_and_promotes_a_champion(finished):
    from models.registry import alias_version
    from models.tracking import connect

    settings, state = finished
    assert state.is_completed()
    summary = state.result()
    assert summary.decision.promoted, summary.decision.reasons
    client = connect(settings.tracking_uri)
    assert (
        alias_version(client, summary.trained.tracked.model_name, "champion")
        == summary.trained.tracked.version
    )
    assert summary.trained.result.champion.metrics["auc"] > 0.6


def test_book_is_reconciled_and_snapshots_written(finished):
    settings, state = finished
    summary = state.result()
    counts = summary.book.counts
    assert (counts["rows_in"] == counts["accepted"] + counts["rejected"]).all()
    assert summary.book.customers == 3_000
    assert (settings.snapshots_dir / "training.parquet").exists()
    rates = summary.training_snapshots["default_rate"]
    assert ((rates > 0.005) & (rates < 0.15)).all()


def test_store_holds_three_scored_runs_with_decisions_and_warnings(finished):
    from pipelines.store.db import open_store
    from pipelines.store.queries import read_audit
    from pipelines.store.tables import PolicyDecision, RunRecord, Score

    settings, state = finished
    summary = state.result()
    engine = open_store(settings.results_url)
    with engine.connect() as conn:
        runs = conn.execute(select(RunRecord.status, RunRecord.n_customers)).all()
        n_scores = conn.execute(select(func.count()).select_from(Score)).scalar_one()
        n_decisions = conn.execute(select(func.count()).select_from(PolicyDecision)).scalar_one()
    # the last matured date (for monitoring's backtests) and the latest two quarters
    assert [status for status, _ in runs] == ["succeeded"] * 3
    assert n_scores == n_decisions == sum(n for _, n in runs)
    assert sum(int(run.grades.sum()) for run in summary.runs) == n_scores
    assert (read_audit(engine, action="run_written")["who"] == "creditrisk-run").all()
    engine.dispose()


def test_rescoring_the_same_date_replaces_the_run(finished):
    from pipelines.store.db import open_store
    from pipelines.store.queries import list_runs, read_warnings
    from pipelines.usecases.scoring import DecisionConfig, ScoringRequest, score_dates

    settings, state = finished
    summary = state.result()
    engine = open_store(settings.results_url)
    before_runs, before_warnings = list_runs(engine), read_warnings(engine)
    scoring = pd.read_parquet(settings.snapshots_dir / "scoring.parquet")
    latest = scoring[scoring["as_of"] == scoring["as_of"].max()]
    tracked = summary.trained.tracked
    request = ScoringRequest(
        tracked.model_name, tracked.version, settings.tracking_uri, settings.results_url,
        "creditrisk-run", DecisionConfig.load(),
    )  # fmt: skip
    (rerun,) = score_dates(latest, request)
    after_runs, after_warnings = list_runs(engine), read_warnings(engine)
    assert len(after_runs) == len(before_runs)
    assert rerun.run_id not in before_runs["id"].tolist()
    assert len(after_warnings) == len(before_warnings)
    engine.dispose()


def test_the_job_backtests_its_warning_levels_out_of_time(finished, capsys, monkeypatch):
    from pipelines.cli.render import console
    from pipelines.cli.run import print_backtest
    from pipelines.decisions.backtest import Backtest

    _, state = finished
    result = state.result().warning_backtest
    assert isinstance(result, Backtest), result
    assert result.rows > 0 and result.defaults > 0
    assert list(result.levels.index) == ["green", "watch", "amber", "red"]
    assert result.levels["share"].sum() == pytest.approx(1.0)
    monkeypatch.setattr(console, "_width", 250)  # undone to None, not to 80
    print_backtest(result, "creditrisk-pd v1")
    printed = capsys.readouterr().out
    assert "Warning levels, backtest with creditrisk-pd v1" in printed
    assert "next quarter's defaulters at amber or red" in printed


def test_each_step_is_its_own_flow_run_under_the_main_one(finished):
    from prefect.client.orchestration import get_client

    _, state = finished
    with get_client(sync_client=True) as client:
        main = client.read_flow_run(state.state_details.flow_run_id)
        runs = client.read_flow_runs()
        flows = {f.id: f.name for f in client.read_flows()}
        parents = {
            run.parent_task_run_id: client.read_task_run(run.parent_task_run_id).flow_run_id
            for run in runs
            if run.parent_task_run_id is not None
        }
    children = sorted(
        flows[run.flow_id]
        for run in runs
        if run.parent_task_run_id is not None and parents[run.parent_task_run_id] == main.id
    )
    assert children == ["build-features", "monitor", "promote", "score", "train"]


def test_the_job_monitors_the_champions_latest_run(finished):
    _, state = finished
    summary = state.result()
    report = summary.monitoring
    assert not isinstance(report, str), report
    assert report.model_version == summary.trained.tracked.version
    assert report.run_id == max(run.run_id for run in summary.runs)
    assert {"score_psi", "migration"} <= set(report.verdicts)
