"""CreditScorer: raw rows in; pd, score, grade, reasons out; in process, in a clean process and
behind `mlflow models serve`."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import version

import mlflow
import numpy as np
import pandas as pd
import pytest

from models.registry import CHAMPION, ensure_experiment
from models.scaling import score_from_pd
from models.scorer import pip_requirements
from models.tracking import connect, log_scorer, log_training
from models.training import train_model

pytestmark = pytest.mark.xdist_group("models-scorer")

NAME = "creditrisk-scorer-test"


def credit_frame(n: int = 2500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dpd = rng.poisson(1.0, n) * 10.0
    util = rng.uniform(0, 1.2, n)
    income = rng.lognormal(10, 0.5, n)
    income[rng.random(n) < 0.1] = np.nan
    segment = rng.choice(["retail", "sme", "corporate"], n)
    logit = -3.0 + 0.05 * dpd + 1.5 * util + 0.5 * (segment == "sme")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "as_of": pd.date_range("2020-01-01", periods=6, freq="QS")[rng.integers(0, 6, n)],
            "dpd": dpd,
            "util": util,
            "income": income,
            "segment": pd.Categorical(segment),
            "default": y,
        }
    )


@pytest.fixture(scope="module")
def result():
    return train_model(credit_frame(), "default", "customer_id", "as_of", n_estimators=30)


@pytest.fixture(scope="module")
def rows(result) -> pd.DataFrame:
    return result.test_frame.drop(columns="default").head(40)


@pytest.fixture(scope="module")
def registered(result, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-scorer")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracked = log_training(
        result,
        experiment="scorer-test",
        model_name=NAME,
        dataset="scorer-test",
        trained_by="alice",
        tracking_uri=uri,
        artifact_root=root / "mlartifacts",
    )
    connect(uri).set_registered_model_alias(NAME, CHAMPION, tracked.version)
    return uri


def test_output_columns_and_values(result, rows):
    scored = result.scorer.score_frame(rows)
    assert list(scored.columns) == ["customer_id", "pd", "score", "grade", "reasons"]
    assert list(scored["customer_id"]) == list(rows["customer_id"])
    assert scored["pd"].between(0.0003, 1).all()
    assert scored["score"].dtype == np.int64
    np.testing.assert_array_equal(scored["score"], score_from_pd(scored["pd"]))
    assert set(scored["grade"]) <= set(result.scorer.master_scale.grades)


def test_column_order_extra_and_missing_columns(result, rows):
    scorer = result.scorer
    base = scorer.score_frame(rows)
    shuffled = rows[rows.columns[::-1]].assign(unused_extra=1.0)
    pd.testing.assert_frame_equal(scorer.score_frame(shuffled), base)
    without_income = scorer.score_frame(rows.drop(columns="income"))
    income_missing = scorer.score_frame(rows.assign(income=np.nan))
    pd.testing.assert_frame_equal(without_income, income_missing)
    assert "customer_id" not in scorer.score_frame(rows.drop(columns="customer_id"))


def test_reasons_are_the_top_risk_raising_contributions(result, rows):
    scorer = result.scorer
    contrib = scorer.contributions(scorer.prepare(rows))[:, :-1]
    names = scorer.feature_names
    for i, value in enumerate(scorer.score_frame(rows)["reasons"]):
        reasons = json.loads(value)
        expected = [names[j] for j in np.argsort(-contrib[i], kind="stable") if contrib[i, j] > 0]
        assert [r["feature"] for r in reasons] == expected[:5]
        contributions = [r["contribution"] for r in reasons]
        assert contributions == sorted(contributions, reverse=True)
        assert all(c > 0 for c in contributions)
        assert all({"feature", "text", "value", "contribution"} <= set(r) for r in reasons)


def test_runtime_is_built_once_and_never_pickled(result, rows):
    scorer = result.scorer
    scorer.load_context(None)
    explainer = scorer._runtime["explainer"]
    scorer.predict(None, rows)
    scorer.predict(None, rows)
    assert scorer._runtime["explainer"] is explainer
    clone = pickle.loads(pickle.dumps(scorer))
    assert clone._runtime is None
    pd.testing.assert_frame_equal(clone.score_frame(rows), scorer.score_frame(rows))


def test_pip_requirements_pin_installed_versions():
    pins = dict(p.split("==") for p in pip_requirements())
    assert pins["lightgbm"] == version("lightgbm")
    assert pins["mlflow"] == version("mlflow")
    assert pins["pandas"] == version("pandas")


CLEAN_PROCESS = """
import sys, mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/{name}@champion")
model.predict(pd.read_parquet(sys.argv[1])).to_parquet(sys.argv[2])
"""


def test_a_clean_process_loads_the_champion_by_alias_and_scores(result, rows, registered, tmp_path):
    rows.to_parquet(tmp_path / "rows.parquet")
    env = {**os.environ, "MLFLOW_TRACKING_URI": registered}
    code = CLEAN_PROCESS.format(name=NAME)
    args = [sys.executable, "-c", code, "rows.parquet", "scored.parquet"]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    pd.testing.assert_frame_equal(scored, result.scorer.score_frame(rows))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.e2e
def test_mlflow_models_serve_scores_json_over_http(result, rows, registered, tmp_path):
    port = free_port()
    mlflow_cli = os.path.join(os.path.dirname(sys.executable), "mlflow")
    args = [mlflow_cli, "models", "serve", "-m", f"models:/{NAME}@champion"]
    args += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": registered, "PATH": path}
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    server = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            if server.poll() is not None:
                pytest.fail((tmp_path / "serve.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        payload = json.loads(rows.head(5).to_json(orient="split", index=False, double_precision=15))
        body = json.dumps({"dataframe_split": payload}).encode()
        request = urllib.request.Request(
            f"{base}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    served = pd.DataFrame(predictions)
    expected = result.scorer.score_frame(rows.head(5))
    assert list(served["customer_id"]) == list(expected["customer_id"])
    np.testing.assert_allclose(served["pd"], expected["pd"], rtol=1e-12)
    assert list(served["grade"]) == list(expected["grade"])
    for got, want in zip(served["reasons"], expected["reasons"], strict=True):
        got, want = json.loads(got), json.loads(want)
        assert [r["feature"] for r in got] == [r["feature"] for r in want]
        assert [r["text"] for r in got] == [r["text"] for r in want]
        np.testing.assert_allclose(
            [r["contribution"] for r in got], [r["contribution"] for r in want], rtol=1e-9
        )


@pytest.mark.realdata
def test_give_me_some_credit_sample_scores_raw_csv_rows_through_pyfunc(datasets_dir, tmp_path):
    path = datasets_dir / "give_me_some_credit" / "cs-training.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    frame = pd.read_csv(path, nrows=6000)
    result = train_model(frame, "SeriousDlqin2yrs", n_estimators=40)
    assert result.id_col == "Unnamed: 0"
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = ensure_experiment(client, "gmsc-scorer", tmp_path / "mlartifacts")
    with mlflow.start_run(experiment_id=experiment):  # artifacts under tmp_path, not ./mlruns
        info = log_scorer(result.scorer, result.test_frame)
    raw = pd.read_csv(path, nrows=50).drop(columns="SeriousDlqin2yrs")
    assert (raw.dtypes == np.int64).sum() >= 5
    scored = mlflow.pyfunc.load_model(info.model_uri).predict(raw)
    pd.testing.assert_frame_equal(scored, result.scorer.score_frame(raw))
    assert list(scored["customer_id"]) == [str(i) for i in raw["Unnamed: 0"]]
    reasons = json.loads(scored["reasons"].iloc[0])
    assert all(r["text"] for r in reasons)


def test_signature_is_id_time_and_features_with_their_kinds(result):
    assert result.scorer.signature == {
        "customer_id": None,
        "as_of": "date",
        "dpd": "numeric",
        "util": "numeric",
        "income": "numeric",
        "segment": "category/text",
    }


def test_signature_differences_name_each_missing_column_and_changed_kind(result, rows):
    scorer = result.scorer
    assert scorer.signature_differences(rows.assign(unused_extra="x")) == []
    assert scorer.signature_differences(rows.assign(segment=rows["segment"].astype(str))) == []
    assert scorer.signature_differences(rows.assign(income=None)) == []  # no value: any kind
    changed = rows.drop(columns=["income", "customer_id"]).assign(
        segment=rows["segment"].cat.codes,  # numeric codes where the text was trained
        util=rows["util"].astype(str),  # text where numbers were trained
        as_of=rows["as_of"].dt.strftime("%Y-%m-%d"),
    )
    differences = scorer.signature_differences(changed)
    assert differences == [
        "'customer_id' is missing",
        "'as_of' is category/text (str), trained as date",
        "'util' is category/text (str), trained as numeric",
        "'income' is missing",
        "'segment' is numeric (int8), trained as category/text",
    ]
    assert [c for c, _ in scorer.signature_mismatches(changed)] == [
        "customer_id", "as_of", "util", "income", "segment"
    ]  # fmt: skip
