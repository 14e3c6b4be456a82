"""Dask scale-out on a local 2-worker cluster (127.0.0.1, no dashboard) with real Prefect, MLflow
and SQLite: partitioned features equal the single-process build exactly, partitioned scoring
equals `compute_dates` (scores within 1e-9), a LightGBM fitted with `DaskLGBMClassifier` comes
within `AUC_TOLERANCE` of the single-process fit, and a failing or lost partition fails the flow
with its own error (Prefect's run states checked; a lost worker's task marked Crashed, not left
Running: prefect#21638)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import dask
import pandas as pd
import pytest

from features.labels import observed_until
from features.snapshots import build_snapshots
from features.synthetic import generate_book
from models.tracking import log_training
from models.training import train_from_snapshots
from models.validation import auc
from pipelines.errors import BadInput, Unavailable
from pipelines.store.testing import temporary_store
from pipelines.usecases.scoring import DecisionConfig, ScoringRequest, compute_dates, store_dates

pytestmark = pytest.mark.xdist_group("dask")

MODEL = "creditrisk-dask-test"
START = pd.Timestamp("2021-01-01")
ROUNDS = 200
AUC_TOLERANCE = 0.02  # |AUC(Dask fit) - AUC(single-process fit)| on the out-of-time test rows
HANG_GUARD = 300  # seconds: a flow that never returns fails the test instead of hanging it
BAD_CUSTOMER_FILE = "bad-customer"


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread on 127.0.0.1, dashboard off; a task that kills its
    worker is given up at once (allowed-failures 0), as the scheduler would after retries."""
    from distributed import Client, LocalCluster

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as local,
        Client(local, set_as_default=False) as client,
    ):
        yield SimpleNamespace(address=local.scheduler_address, client=client)


@pytest.fixture(scope="module")
def book():
    """A 1,500-customer book: quarterly training snapshots and three scoring dates."""
    tables = generate_book(1_500, 36, start=f"{START:%Y-%m-%d}", seed=3)
    observed = observed_until(tables)
    training_dates = [START + pd.DateOffset(months=m) for m in (12, 15, 18, 21, 24)]
    scoring_dates = [observed - pd.DateOffset(months=m) for m in (6, 3, 0)]
    return SimpleNamespace(
        tables=tables,
        training_dates=training_dates,
        scoring_dates=scoring_dates,
        training=build_snapshots(tables, training_dates),
        scoring=build_snapshots(tables, scoring_dates, with_defaulted=True),
    )


@pytest.fixture(scope="module")
def trained(book):
    return train_from_snapshots(book.training, n_estimators=ROUNDS)


@pytest.fixture(scope="module")
def registered(book, trained, tmp_path_factory):
    """The single-process model in MLflow and a results store holding the first scoring date's
    run, so the later dates warn against stored history and against each other."""
    root = tmp_path_factory.mktemp("mlflow-dask")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracked = log_training(
        trained,
        experiment="dask-test",
        model_name=MODEL,
        dataset="dask-test",
        trained_by="alice",
        tracking_uri=uri,
        artifact_root=root / "mlartifacts",
    )
    with temporary_store("sqlite", root) as engine:
        url = engine.url.render_as_string(hide_password=False)
        request = ScoringRequest(MODEL, tracked.version, uri, url, "runner", DecisionConfig.load())
        first = book.scoring[book.scoring["as_of"] == book.scoring_dates[0]]
        store_dates(compute_dates(first, request), request)
        yield request


def guarded(call, *args, **kwargs):
    """``call`` in a thread, failing the test if it has not returned in `HANG_GUARD` s."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call, *args, **kwargs).result(timeout=HANG_GUARD)


def latest_run(flow_name: str):
    """The newest run of ``flow_name`` and its task runs by name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        )
    return run, {t.name: t for t in tasks}


def test_partitioned_features_equal_the_single_process_build(prefect_harness, cluster, book):
    from pipelines.flows.partitioned import build_snapshots_partitioned

    training = guarded(
        build_snapshots_partitioned,
        book.tables,
        book.training_dates[-2:],
        12,
        address=cluster.address,
    )
    pd.testing.assert_frame_equal(training, build_snapshots(book.tables, book.training_dates[-2:]))
    run, tasks = latest_run("snapshots-partitioned")
    assert run.state.is_completed() and len(tasks) == 2  # one partition per worker thread

    scoring = guarded(
        build_snapshots_partitioned,
        book.tables,
        book.scoring_dates,
        12,
        address=cluster.address,
        with_defaulted=True,
        n_partitions=3,
    )
    pd.testing.assert_frame_equal(scoring, book.scoring)
    assert scoring["defaulted_on"].notna().any()  # the customers in default are stacked last
    _, tasks = latest_run("snapshots-partitioned")
    assert sorted(tasks) == [f"snapshot-partition-{i}" for i in range(3)]


def test_partitioned_scoring_equals_compute_dates(prefect_harness, cluster, book, registered):
    from pipelines.flows.partitioned import compute_dates_partitioned

    later = book.scoring[book.scoring["as_of"] > book.scoring_dates[0]]
    whole = compute_dates(later, registered)
    parts = guarded(
        compute_dates_partitioned, later, registered, address=cluster.address, n_partitions=3
    )
    assert (
        [d.as_of for d in parts]
        == [d.as_of for d in whole]
        == [d.date() for d in book.scoring_dates[1:]]
    )
    for mine, theirs in zip(parts, whole, strict=True):
        pd.testing.assert_frame_equal(
            mine.scored, theirs.scored, check_exact=False, rtol=0, atol=1e-9
        )
        pd.testing.assert_series_equal(mine.scored["reasons"], theirs.scored["reasons"])
        pd.testing.assert_frame_equal(mine.decisions, theirs.decisions)
        pd.testing.assert_frame_equal(mine.warnings, theirs.warnings)
        assert mine.trace == theirs.trace
    # history-based signals fired: against the stored run and against the batch's earlier date
    fired = pd.concat([d.warnings for d in whole])
    assert fired["signals"].str.contains("pd_increase|downgrade", regex=True).any()
    assert (fired["level"] == "defaulted").any() and (fired["level"] != "green").sum() > 10


def test_a_dask_fitted_lightgbm_is_within_tolerance_of_the_single_process_one(
    cluster, book, trained
):
    on_dask = train_from_snapshots(book.training, n_estimators=ROUNDS, client=cluster.client)

    def params(result) -> list[str]:
        text = result.lgbm_model.booster_.model_to_string()
        keys = ("objective", "learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction",
                "bagging_fraction", "bagging_freq", "lambda_l2", "max_bin", "cat_smooth", "cat_l2",
                "seed", "monotone_constraints", "monotone_constraints_method")  # fmt: skip
        return [line for line in text.splitlines() if line.strip("[").split(":")[0] in keys]

    # LightGBM's distributed learners enforce monotone constraints by the "basic" method only
    here = [p.replace("intermediate", "basic") for p in params(trained)]
    assert params(on_dask) == here and len(here) == 14
    assert "[monotone_constraints_method: intermediate]" in params(trained)
    assert "[num_machines: 2]" in on_dask.lgbm_model.booster_.model_to_string()

    def raw_auc(result) -> float:
        X = result.scorer.prepare(result.test_frame)
        return auc(result.y_test, result.lgbm_model.decision_function(X))

    gap = abs(raw_auc(on_dask) - raw_auc(trained))
    print(f"\nAUC single {raw_auc(trained):.4f} dask {raw_auc(on_dask):.4f} gap {gap:.4f}")
    assert gap <= AUC_TOLERANCE
    assert abs(on_dask.metrics["lightgbm_auc"] - trained.metrics["lightgbm_auc"]) <= AUC_TOLERANCE
    scored = on_dask.scorer.score_frame(book.scoring.head(50))  # the usual scorer path
    assert scored["pd"].between(0, 1).all() and scored["reasons"].str.len().gt(2).all()


def test_a_snapshot_off_the_signature_is_refused_as_by_compute_dates(
    prefect_harness, cluster, book, registered
):
    from pipelines.flows.partitioned import compute_dates_partitioned

    later = book.scoring[book.scoring["as_of"] == book.scoring_dates[-1]]
    text = later["utilisation_mean_3m"].astype(str)
    off = later.drop(columns=["leverage"]).assign(utilisation_mean_3m=text)
    with pytest.raises(BadInput) as whole:
        compute_dates(off, registered)
    with pytest.raises(BadInput) as parts:
        guarded(compute_dates_partitioned, off, registered, address=cluster.address)
    assert parts.value.as_dict() == whole.value.as_dict()
    assert "leverage" in parts.value.reason and "utilisation_mean_3m" in parts.value.reason


# --- failure paths: a failing function monkeypatched here, shipped to the workers with the task --


def _failing_build(bad: str, kill: bool):
    """A build_snapshot that fails (or kills its worker) in the partition holding ``bad``."""
    from features.snapshots import build_snapshot

    def build(tables, *args, **kwargs):
        if bad in set(tables["customers"]["customer_id"].astype(str)):
            if kill:
                os._exit(1)
            raise BadInput("a value no feature can read", source="customers", key=bad)
        return build_snapshot(tables, *args, **kwargs)

    return build


def test_a_failing_partition_fails_the_flow_with_its_own_typed_error(
    prefect_harness, cluster, book, monkeypatch
):
    from pipelines.flows import partitioned

    bad = str(book.tables["customers"]["customer_id"].iloc[7])
    monkeypatch.setattr(partitioned, "build_snapshot", _failing_build(bad, kill=False))
    with pytest.raises(BadInput) as caught:
        guarded(
            partitioned.build_snapshots_partitioned, book.tables, book.scoring_dates[-1:], 12,
            address=cluster.address,
        )  # fmt: skip
    assert caught.value.key == bad and caught.value.source == "customers"
    run, tasks = latest_run("snapshots-partitioned")
    assert run.state.is_failed() and "a value no feature can read" in run.state.message
    states = sorted(t.state.type.value for t in tasks.values())
    assert states == ["COMPLETED", "FAILED"]  # the other partition finished; no retry
    assert all(t.run_count == 1 for t in tasks.values())


def test_a_failing_scoring_partition_fails_the_flow(
    prefect_harness, cluster, book, registered, monkeypatch
):
    from pipelines.flows import partitioned

    def broken(*args, **kwargs):
        raise RuntimeError("scorer exploded")

    monkeypatch.setattr(partitioned, "decide_scores", broken)
    later = book.scoring[book.scoring["as_of"] == book.scoring_dates[-1]]
    with pytest.raises(RuntimeError, match="scorer exploded"):
        guarded(partitioned.compute_dates_partitioned, later, registered, address=cluster.address)
    run, tasks = latest_run("score-partitioned")
    assert run.state.is_failed() and "scorer exploded" in run.state.message
    assert {t.state.type.value for t in tasks.values()} == {"FAILED"}


def test_a_worker_lost_under_a_task_crashes_its_task_run_and_raises_unavailable(
    prefect_harness, cluster, book, monkeypatch
):
    from pipelines.flows import partitioned

    bad = str(book.tables["customers"]["customer_id"].iloc[11])
    monkeypatch.setattr(partitioned, "build_snapshot", _failing_build(bad, kill=True))
    try:
        with pytest.raises(Unavailable, match=r"lost the task snapshot-partition-\d: KilledWorker"):
            guarded(
                partitioned.build_snapshots_partitioned, book.tables, book.scoring_dates[-1:], 12,
                address=cluster.address,
            )  # fmt: skip
    finally:
        cluster.client.wait_for_workers(2, timeout=120)  # the nanny restarts the lost one
    run, tasks = latest_run("snapshots-partitioned")
    assert run.state.is_failed()
    states = sorted(t.state.type.value for t in tasks.values())
    assert states == ["COMPLETED", "CRASHED"]  # not left RUNNING (prefect#21638)


def test_the_driver_stops_the_rounds_where_lightgbm_early_stopping_does():
    import lightgbm as lgb
    import numpy as np

    from models.dask_lgbm import stopping_round, validation_loss

    rng = np.random.default_rng(0)
    n = 3_000
    X = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n),
         "c": pd.Categorical(rng.choice(list("xyz"), n))}
    )  # fmt: skip
    y = (rng.random(n) < 1 / (1 + np.exp(2 - X["a"] - (X["c"] == "x")))).astype(float)
    fit, held = slice(0, 2_000), slice(2_000, None)
    params = {"objective": "binary", "learning_rate": 0.3, "min_child_samples": 5, "seed": 1,
              "deterministic": True, "num_threads": 1, "verbosity": -1}  # fmt: skip
    recorded: dict = {}
    train = lgb.Dataset(X[fit], y[fit])
    stopped = lgb.train(
        params, train, 500, valid_sets=[lgb.Dataset(X[held], y[held], reference=train)],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(20, verbose=False), lgb.record_evaluation(recorded)],
    )  # fmt: skip
    every_round = lgb.train(params, lgb.Dataset(X[fit], y[fit]), 500)
    losses = validation_loss(every_round, X[held], y[held])
    curve = recorded["valid"]["binary_logloss"]
    np.testing.assert_allclose(losses[: len(curve)], curve, rtol=1e-9)
    assert stopping_round(losses, 20) == (stopped.best_iteration, len(curve))
    assert len(curve) < 500
