"""The score and monitor flows on a small book with a champion: idempotent reruns, retries of a
store briefly away (seen in Prefect), failures that fail the flow run with the task's error and
leave the store as it was, and the monitoring artifacts. Real Prefect, MLflow and SQLite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from pipelines.errors import Unavailable
from pipelines.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("prefect")]


def make_champion_home(home: Path) -> Settings:
    """A home with a 1,500-customer book and a promoted champion (no Prefect involved)."""
    from models.registry import Gates
    from pipelines.usecases.book import GenerateRequest, generate_book, validate_book
    from pipelines.usecases.promotion import promote
    from pipelines.usecases.snapshots import SnapshotPlan, build_and_write_snapshots
    from pipelines.usecases.training import TrainRequest, train_and_register

    settings = Settings(home=home)
    book = GenerateRequest(customers=1_500, months=42, seed=7, truth=False)
    generate_book(book, settings.book_dir)
    validated = validate_book(settings.book_dir, 0.05, settings.rejects_dir / "rejects.csv")
    plan = SnapshotPlan.for_book(validated.observed_until, pd.Timestamp(book.start), 12)
    path = settings.snapshots_dir / "training.parquet"
    build_and_write_snapshots(validated.tables, plan.training, 12, path)
    trained = train_and_register(TrainRequest(snapshots=path, trained_by="alice"), settings)
    gates = Gates(min_auc=0.55, allow_red_jeffreys=True)
    tracked = trained.tracked
    decision = promote(settings.tracking_uri, tracked.model_name, tracked.version, "bob", gates)
    assert decision.promoted, decision.reasons
    return settings


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Settings:
    return make_champion_home(tmp_path_factory.mktemp("flows") / "home")


def store_counts(settings: Settings) -> dict[str, int]:
    """Rows of the run, score and audit tables, and the current runs by date."""
    from pipelines.store.db import open_store
    from pipelines.store.tables import AuditLog, RunRecord, Score

    engine = open_store(settings.results_url)
    with engine.connect() as conn:
        counts = {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in (("runs", RunRecord), ("scores", Score), ("audit", AuditLog))
        }
    engine.dispose()
    return counts


def task_runs(flow_run_id) -> dict[str, list]:
    """The task runs of a flow run by task name, each with its state names in order."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        return {
            run.name.rsplit("-", 1)[0]: (
                run,
                [s.name for s in sorted(client.read_task_run_states(run.id), key=_time)],
            )
            for run in runs
        }


def _time(state):
    return state.timestamp


def flow_run(state):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id)


@pytest.fixture
def quick_retries(monkeypatch):
    """The retried tasks wait no time between attempts."""
    from pipelines.flows import tasks

    for name in ("store_task", "validate_book_task", "current_runs_task"):
        monkeypatch.setattr(getattr(tasks, name), "retry_delay_seconds", [0, 0])


def test_a_rerun_of_the_same_date_writes_nothing_new(prefect_harness, home):
    from pipelines.flows.score import score_flow

    first = score_flow(home, as_of=["2024-01-01"])
    assert [run.as_of for run in first.runs] == [pd.Timestamp("2024-01-01")]
    assert first.current == {}
    before = store_counts(home)

    again = score_flow(home, as_of=["2024-01-01"])

    assert again.runs == []
    assert again.current == {pd.Timestamp("2024-01-01"): first.runs[0].run_id}
    assert store_counts(home) == before


def test_a_store_briefly_away_is_retried_and_the_retry_shows_in_prefect(
    prefect_harness, home, monkeypatch, quick_retries
):
    from pipelines.flows.score import score_flow
    from pipelines.usecases import scoring

    real, calls = scoring.store_new_dates, []

    def away_once(dates, request):
        calls.append(1)
        if len(calls) == 1:
            raise Unavailable("the results store did not answer: connection refused")
        return real(dates, request)

    monkeypatch.setattr(scoring, "store_new_dates", away_once)
    state = score_flow(home, as_of=["2023-10-01"], return_state=True)

    assert state.is_completed(), state.message
    assert [run.as_of for run in state.result().runs] == [pd.Timestamp("2023-10-01")]
    run, states = task_runs(state.state_details.flow_run_id)["store-runs"]
    assert run.run_count == 2
    assert "AwaitingRetry" in states and "Retrying" in states and states[-1] == "Completed"


def test_bad_input_fails_the_flow_run_at_once_and_leaves_the_store_as_it_was(prefect_harness, home):
    from pipelines.flows.score import score_flow

    before = store_counts(home)
    state = score_flow(home, as_of=["2031-01-01"], return_state=True)

    assert state.is_failed()
    assert "2031-01-01 outside the book" in flow_run(state).state.message
    run, states = task_runs(state.state_details.flow_run_id)["scoring-snapshots"]
    assert run.run_count == 1 and states[-1] == "Failed"  # bad input is not retried
    assert store_counts(home) == before


def test_a_store_that_stays_away_fails_the_command_with_exit_3_and_changes_nothing(
    prefect_harness, home, monkeypatch, quick_retries
):
    from pipelines.cli import app
    from pipelines.usecases import scoring

    def away(dates, request):
        raise Unavailable("the results store did not answer: connection refused", hint="start it")

    monkeypatch.setattr(scoring, "store_new_dates", away)
    monkeypatch.setenv("CREDITRISK_HOME", str(home.home))
    before = store_counts(home)

    result = CliRunner().invoke(app, ["score", "--as-of", "2023-07-01"])

    assert result.exit_code == 3, result.output
    assert "the results store did not answer" in result.output
    assert "Traceback" not in result.output
    assert store_counts(home) == before
    failed = latest_flow_run("score")
    assert failed.state.is_failed()
    assert "the results store did not answer" in failed.state.message
    run, _ = task_runs(failed.id)["store-runs"]
    assert run.run_count == 3  # the first attempt and two retries


def subflows(flow_run_id) -> list[str]:
    """The flow names of the flow runs started inside flow run ``flow_run_id``."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        return sorted(
            flows[run.flow_id]
            for run in client.read_flow_runs()
            if run.parent_task_run_id is not None
            and client.read_task_run(run.parent_task_run_id).flow_run_id == flow_run_id
        )


def latest_flow_run(name: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        return run


def test_the_monitor_flow_publishes_markdown_and_table_artifacts(prefect_harness, home):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from pipelines.flows.monitor import monitor_flow
    from pipelines.flows.score import score_flow

    score_flow(home)  # the book's last month: the latest run
    state = monitor_flow(home, return_state=True)
    assert state.is_completed(), state.message
    report = state.result()

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    kinds = {a.key: a.type for a in artifacts}
    assert kinds.pop("monitoring-creditrisk-pd") == "markdown"
    assert kinds and set(kinds.values()) == {"table"}
    markdown = next(a.data for a in artifacts if a.type == "markdown")
    assert f"v{report.model_version}" in markdown
    for name in report.figures:
        figure = home.home / "monitoring" / str(report.monitoring_id) / f"{name}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(figure.resolve()) in markdown


def test_with_a_prefect_server_features_and_promote_run_as_their_flows(
    prefect_harness, home, tmp_path, monkeypatch
):
    from pipelines.cli import app

    monkeypatch.setenv("CREDITRISK_HOME", str(home.home))
    out = tmp_path / "snapshots.parquet"
    built = CliRunner().invoke(app, ["features", "--as-of", "2023-01-01", "--out", str(out)])

    assert built.exit_code == 0, built.output
    assert pd.read_parquet(out)["as_of"].unique().tolist() == [pd.Timestamp("2023-01-01")]
    run = latest_flow_run("build-features")
    assert run.state.is_completed() and run.parameters["out"] == str(out)

    refused = CliRunner().invoke(app, ["promote", "7", "--approver", "bob"])
    assert refused.exit_code == 2, refused.output
    assert "has no version 7" in refused.output
    failed = latest_flow_run("promote")
    assert failed.state.is_failed() and "has no version 7" in failed.state.message


@pytest.fixture(scope="module")
def dask_address():
    """A local Dask cluster of 2 workers on 127.0.0.1 (dashboard on a free port)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster.scheduler_address


def test_with_a_dask_address_the_score_flow_runs_partitioned_with_the_same_result(
    prefect_harness, home, dask_address
):
    from pipelines.flows.score import score_flow
    from pipelines.store.db import open_store
    from pipelines.store.queries import read_scores
    from pipelines.usecases.book import read_typed_book
    from pipelines.usecases.scoring import compute_dates
    from pipelines.usecases.snapshots import scoring_snapshots

    state = score_flow(home, as_of=["2023-04-01"], dask_address=dask_address, return_state=True)
    on_cluster = state.result()
    (run,) = on_cluster.runs
    flow_run_id = state.state_details.flow_run_id
    assert subflows(flow_run_id) == ["score-partitioned", "snapshots-partitioned"]

    # the same snapshot, version and configuration: the single process finds it current
    here = score_flow(home, as_of=["2023-04-01"])
    assert here.current == {pd.Timestamp("2023-04-01"): run.run_id} and here.runs == []
    frame = scoring_snapshots(read_typed_book(home.book_dir), [pd.Timestamp("2023-04-01")], 12)
    (expected,) = compute_dates(frame, on_cluster.request)
    engine = open_store(home.results_url)
    stored = read_scores(engine, run.run_id).set_index("customer_id").sort_index()
    engine.dispose()
    wanted = expected.scored.set_index("customer_id").sort_index()
    assert stored.index.equals(wanted.index)
    assert (stored["grade"] == wanted["grade"]).all()
    assert float((stored["pd"] - wanted["pd"]).abs().max()) < 1e-9


def test_with_a_dask_address_build_features_writes_the_same_snapshots(
    prefect_harness, home, dask_address, tmp_path
):
    from pipelines.flows.features import build_features_flow

    dates = ["2022-10-01", "2023-01-01"]
    here = build_features_flow(home, as_of=dates, out=tmp_path / "here.parquet")
    state = build_features_flow(
        home, as_of=dates, out=tmp_path / "there.parquet", dask_address=dask_address,
        return_state=True,
    )  # fmt: skip
    there = state.result()

    assert subflows(state.state_details.flow_run_id) == ["snapshots-partitioned"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "there.parquet"), pd.read_parquet(tmp_path / "here.parquet")
    )
    assert there.snapshots["snapshots"].summary.equals(here.snapshots["snapshots"].summary)
