"""Registry rules: challenger alias, gates, four eyes, champion comparison, decision history."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.registry import (
    CHALLENGER,
    CHAMPION,
    Gates,
    alias_version,
    champion_at,
    gate_failures,
    history,
    promote,
)
from models.tracking import connect, log_training
from models.training import train_model

pytestmark = pytest.mark.xdist_group("models-registry")

LENIENT = Gates(min_auc=0.55, allow_red_jeffreys=True)


def credit_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dpd = rng.poisson(1.0, n) * 10.0
    util = rng.uniform(0, 1.2, n)
    other = rng.normal(size=n)
    logit = -2.5 + 0.06 * dpd + 1.5 * util + 0.3 * other
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "as_of": pd.date_range("2020-01-01", periods=6, freq="QS")[rng.integers(0, 6, n)],
            "dpd": dpd,
            "util": util,
            "other": other,
            "default": y,
        }
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite MLflow store with a strong and a weak version of the same data, by alice."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    frame = credit_frame()
    tracked = {}
    for label, exclude in (("strong", ()), ("weak", ("dpd", "util"))):
        result = train_model(
            frame, "default", "customer_id", "as_of", exclude=exclude, n_estimators=40
        )
        tracked[label] = log_training(
            result,
            experiment="registry-test",
            model_name="creditrisk-registry-test",
            dataset="registry-test",
            trained_by="alice",
            tracking_uri=uri,
            artifact_root=root / "mlartifacts",
        )
    return {"uri": uri, "client": connect(uri), "tracked": tracked, "root": root}


def fresh_model(store, name: str, order=("strong", "weak")) -> dict[str, str]:
    """Register the logged versions again under a new name: {label: version}."""
    client = store["client"]
    versions = {}
    for label in order:
        tracked = store["tracked"][label]
        source = client.get_model_version(tracked.model_name, tracked.version)
        mv = mlflow.register_model(tracked.model_uri, name)
        for key, value in source.tags.items():
            client.set_model_version_tag(name, mv.version, key, value)
        client.set_registered_model_alias(name, CHALLENGER, mv.version)
        versions[label] = str(mv.version)
    return versions


def test_new_versions_get_the_challenger_alias_and_gate_tags(store):
    client, tracked = store["client"], store["tracked"]
    name = tracked["weak"].model_name
    assert alias_version(client, name, CHALLENGER) == tracked["weak"].version
    assert alias_version(client, name, CHAMPION) is None
    tags = client.get_model_version(name, tracked["strong"].version).tags
    assert tags["trained_by"] == "alice"
    assert tags["dataset"] == "registry-test"
    assert tags["target"] == "default"
    assert 0.5 < float(tags["auc"]) <= 1
    assert float(tags["psi"]) >= 0
    assert int(tags["jeffreys_red"]) >= 0


def test_gate_failures_name_each_failed_gate():
    passing = {"auc": "0.80", "psi": "0.05", "jeffreys_red": "0"}
    assert gate_failures(passing, Gates(min_auc=0.7)) == []
    low_auc = gate_failures({**passing, "auc": "0.69"}, Gates(min_auc=0.7))
    assert low_auc == ["AUC 0.6900 below the minimum 0.7000"]
    shifted = gate_failures({**passing, "psi": "0.25"}, Gates())
    assert len(shifted) == 1 and "PSI 0.2500" in shifted[0]
    red = {**passing, "jeffreys_red": "2", "jeffreys_red_grades": "R1,R2"}
    assert gate_failures(red, Gates()) == ["2 grade(s) red in the Jeffreys test: R1,R2"]
    assert gate_failures(red, Gates(allow_red_jeffreys=True)) == []
    assert len(gate_failures({}, Gates())) == 2


def test_four_eyes_the_trainer_cannot_approve(store):
    client = store["client"]
    v = fresh_model(store, "four-eyes")
    refused = promote(client, "four-eyes", v["strong"], "Alice", LENIENT)
    assert not refused.promoted
    assert any("four-eyes" in r for r in refused.reasons)
    assert alias_version(client, "four-eyes", CHAMPION) is None
    approved = promote(client, "four-eyes", v["strong"], "bob", LENIENT)
    assert approved.promoted
    assert alias_version(client, "four-eyes", CHAMPION) == v["strong"]
    assert client.get_model_version("four-eyes", v["strong"]).tags["promoted_by"] == "bob"


def test_failed_gates_refuse_and_keep_the_champion(store):
    client = store["client"]
    v = fresh_model(store, "gates")
    decision = promote(client, "gates", v["strong"], "bob", Gates(min_auc=0.99))
    assert not decision.promoted
    assert any("below the minimum 0.9900" in r for r in decision.reasons)
    assert alias_version(client, "gates", CHAMPION) is None
    strict_psi = promote(client, "gates", v["strong"], "bob", Gates(min_auc=0.5, max_psi=0.0))
    assert not strict_psi.promoted
    assert any("PSI" in r for r in strict_psi.reasons)


def test_a_challenger_worse_than_the_champion_is_refused(store):
    client = store["client"]
    v = fresh_model(store, "worse")
    assert promote(client, "worse", v["strong"], "bob", LENIENT).promoted
    decision = promote(
        client, "worse", v["weak"], "bob", Gates(min_auc=0.5, allow_red_jeffreys=True)
    )
    assert not decision.promoted
    assert decision.champion_auc > decision.challenger_auc
    assert any("worse than champion" in r for r in decision.reasons)
    assert alias_version(client, "worse", CHAMPION) == v["strong"]


def test_a_better_challenger_replaces_the_champion_and_history_shows_when(store):
    client = store["client"]
    v = fresh_model(store, "history", order=("weak", "strong"))
    first = promote(
        client, "history", v["weak"], "carol", Gates(min_auc=0.5, allow_red_jeffreys=True)
    )
    refused = promote(client, "history", v["strong"], "alice", LENIENT)
    second = promote(client, "history", v["strong"], "carol", LENIENT)
    assert first.promoted and not refused.promoted and second.promoted
    assert second.previous_champion == v["weak"]
    assert second.challenger_auc > second.champion_auc
    assert alias_version(client, "history", CHALLENGER) is None

    frame = history(client, "history")
    assert list(frame["decision"]) == ["promote", "refuse", "promote"]
    assert list(frame["version"]) == [v["weak"], v["strong"], v["strong"]]
    assert list(frame["champion"]) == [v["weak"], v["weak"], v["strong"]]
    assert list(frame["approver"]) == ["carol", "alice", "carol"]
    assert frame["decided_at"].is_monotonic_increasing
    between = frame["decided_at"].iloc[1]
    assert champion_at(frame, between) == v["weak"]
    assert champion_at(frame, frame["decided_at"].iloc[2]) == v["strong"]
    assert champion_at(frame, frame["decided_at"].iloc[0] - pd.Timedelta("1s")) is None


def test_cli_train_promote_and_history(store, tmp_path, monkeypatch):
    from pipelines.cli import app

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    path = tmp_path / "book-loans.csv"
    credit_frame(2000, seed=3).drop(columns="as_of").to_csv(path, index=False)
    runner = CliRunner()
    args = ["train", "--data", str(path), "--target", "default", "--id", "customer_id"]
    trained = runner.invoke(app, [*args, "--trained-by", "dana"])
    assert trained.exit_code == 0, trained.output
    assert "creditrisk-book-loans v1" in trained.output
    assert f"mlflow ui --backend-store-uri {store['uri']}" in trained.output

    promote_args = ["promote", "1", "--model", "creditrisk-book-loans", "--min-auc", "0.55"]
    promote_args.append("--allow-red-jeffreys")
    own = runner.invoke(app, [*promote_args, "--approver", "dana"])
    assert own.exit_code == 1
    assert "four-eyes" in own.output
    other = runner.invoke(app, [*promote_args, "--approver", "erin"])
    assert other.exit_code == 0, other.output
    assert "now champion" in other.output
    shown = runner.invoke(app, ["models", "history", "--model", "creditrisk-book-loans"])
    assert shown.exit_code == 0, shown.output
    assert "refuse" in shown.output and "promote" in shown.output and "erin" in shown.output


def test_tuning_trials_are_nested_runs_of_the_training_run(store):
    result = train_model(
        credit_frame(1500, seed=5), "default", "customer_id", "as_of", tune_trials=2,
        n_estimators=20,
    )  # fmt: skip
    tracked = log_training(
        result,
        experiment="tuning-test",
        model_name="tuning-test",
        dataset="tuning-test",
        trained_by="alice",
        tracking_uri=store["uri"],
        artifact_root=store["root"] / "mlartifacts",
    )
    client = store["client"]
    children = client.search_runs(
        [tracked.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{tracked.run_id}'"
    )
    assert sorted(r.info.run_name for r in children) == ["trial 0", "trial 1"]
    aucs = sorted(r.data.metrics["valid_auc"] for r in children)
    assert aucs == sorted(t["valid_auc"] for t in result.trials)
    assert all("num_leaves" in r.data.params for r in children)
