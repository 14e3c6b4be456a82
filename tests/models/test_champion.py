"""The champion candidate (`models.champion`): the scorecard or a blend where the truth is additive,
LightGBM where risk lies in an interaction; the choice is made without the test rows, recorded in
MLflow and shown by `creditrisk train`; the registered scorer of either scores and explains."""

from __future__ import annotations

import importlib.util
import json
import tempfile

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.champion import BLEND_MARGIN, choose, fit_candidates
from models.prepare import TablePreparer
from models.registry import TEST_FRAME_ARTIFACT, alias_version, load_scorer
from models.scorecard import scorecard_matrix
from models.split import make_split
from models.tracking import connect
from models.training import train_model
from models.validation import auc
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.xdist_group("models-champion")

DATES = pd.date_range("2020-01-01", periods=8, freq="QS")


def additive_frame(n: int = 10_000, seed: int = 1) -> pd.DataFrame:
    """Logit-linear truth: ten small counts and ratings, each moving the log-odds alone."""
    rng = np.random.default_rng(seed)
    X = {f"x{j}": rng.integers(0, 5, n).astype(float) for j in range(10)}
    beta = np.linspace(0.15, 0.45, 10) * np.where(np.arange(10) % 2, 1, -1)
    logit = -2.0 + sum(b * (X[f"x{j}"] - 2) for j, b in enumerate(beta))
    return _frame(rng, X, logit)


def interaction_frame(n: int = 10_000, seed: int = 1) -> pd.DataFrame:
    """Risk in an interaction: leverage hurts in a downturn and helps in a boom (the sign of their
    product), no additive part the scorecard could add; a covenant breach beside it."""
    rng = np.random.default_rng(seed)
    leverage, cycle = rng.normal(size=(2, n))
    breached = (rng.random(n) < 0.3).astype(float)
    logit = -1.5 + 2.5 * np.sign(leverage * cycle) + 2.0 * breached
    X = {"leverage": leverage, "cycle": cycle, "covenant_breached": breached}
    return _frame(rng, X, logit)


def _frame(rng, X: dict, logit: np.ndarray) -> pd.DataFrame:
    n = len(logit)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = {"customer_id": [f"C{i:05d}" for i in range(n)], "as_of": DATES[rng.integers(0, 8, n)]}
    return pd.DataFrame({**ids, **X, "default": y})


def fit(frame: pd.DataFrame, split: str):
    if split == "out_of_time":
        return train_model(frame, "default", "customer_id", "as_of")
    return train_model(frame.drop(columns="as_of"), "default", "customer_id")


SPLITS = ["out_of_time", "stratified"]


@pytest.mark.parametrize("split", SPLITS)
def test_an_additive_truth_makes_the_scorecard_or_a_blend_the_champion(split):
    result = fit(additive_frame(), split)
    choice = result.choice
    assert choice.chosen in ("scorecard", "blend")
    assert choice.auc["scorecard"] > choice.auc["lightgbm"]
    scorer = result.scorer
    assert scorer.scorecard is result.scorecard_model
    assert scorer.lightgbm_weight == choice.weight < 1
    assert result.params["champion_model"] == choice.chosen == result.champion.name
    scored = scorer.score_frame(result.test_frame.drop(columns="default"))
    np.testing.assert_allclose(scored["pd"], result.champion.pd, rtol=0, atol=1e-12)


@pytest.mark.parametrize("split", SPLITS)
def test_an_interaction_makes_lightgbm_the_champion(split):
    result = fit(interaction_frame(), split)
    choice = result.choice
    assert choice.chosen == "lightgbm"
    assert choice.auc["lightgbm"] > choice.auc["scorecard"] + 0.2
    assert result.scorer.scorecard is None and result.scorer.lightgbm_weight == 1.0
    assert result.challenger.name == "scorecard"


def test_the_choice_reads_no_test_row():
    """Out of time: the choice is made on the calibration rows, so the test rows' outcomes can
    change without moving it."""
    frame = additive_frame()
    result = fit(frame, "out_of_time")
    assert result.choice.rows == result.split_sizes["calib"]
    latest = frame["as_of"] == frame["as_of"].max()
    flipped = frame.assign(default=np.where(latest, 1 - frame["default"], frame["default"]))
    again = fit(flipped, "out_of_time")
    assert again.choice == result.choice
    assert again.champion.metrics["auc"] != result.champion.metrics["auc"]


def test_without_time_the_scorecard_is_judged_on_rows_its_bins_never_saw():
    """On pure noise a scorecard binned on every row ranks its own rows well (the bins follow
    the noise); the choice reads scorecards refitted whole without each fold, which rank chance."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({f"x{j}": rng.normal(size=1500) for j in range(12)})
    y = (rng.random(1500) < 0.2).astype(int)
    preparer = TablePreparer().fit(X)
    prepared = preparer.transform(X)
    candidates = fit_candidates(prepared, y, preparer)
    in_sample = auc(y, candidates.scorecard.decision_function(scorecard_matrix(preparer, prepared)))
    assert candidates.choice.auc["scorecard"] < 0.55 < 0.65 < in_sample
    assert candidates.choice.rows == len(y)  # a small table: every fold refitted


def test_choose_prefers_the_better_model_the_scorecard_on_a_tie_and_a_blend_that_pays():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 20_000))
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(a + b)))).astype(int)
    noisy = a + b + rng.normal(size=20_000)
    assert choose(y, a + b, noisy, "rows").chosen == "lightgbm"
    assert choose(y, noisy, a + b, "rows").chosen == "scorecard"
    assert choose(y, a + b, a + b, "rows").chosen == "scorecard"
    both = choose(y, a, b, "rows")  # each model sees half the truth
    assert both.chosen == "blend" and both.blend_weight in (0.4, 0.5, 0.6)
    assert both.auc["blend"] >= max(both.auc["lightgbm"], both.auc["scorecard"]) + BLEND_MARGIN
    assert both.weight == both.blend_weight and both.weight_of("scorecard") == 0.0


def test_the_benchmark_champion_is_what_train_registers():
    """`benchmarks/model_quality.py` fits its champion through the same code as `train_model`:
    on the rows train_model fits on, the same choice and the same log-odds of the test rows."""
    bench = _benchmark()
    frame = additive_frame().drop(columns="as_of")
    result = train_model(frame, "default", "customer_id")
    y = frame["default"].to_numpy()
    split = make_split(y, seed=42)  # the split train_model made
    fit_rows = np.sort(np.concatenate([split.train, split.valid]))
    assert len(fit_rows) == result.choice.rows
    features = frame.drop(columns=["customer_id", "default"])
    fitted = bench.champion(features.iloc[fit_rows], y[fit_rows], features.iloc[split.test])
    assert (fitted.chosen, fitted.weight) == (result.choice.chosen, result.choice.weight)
    scorer = result.scorer
    expected = scorer.log_odds(scorer.prepare(frame.iloc[split.test]))
    np.testing.assert_allclose(fitted.scores, expected, rtol=0, atol=1e-12)


def _benchmark():
    spec = importlib.util.spec_from_file_location("mq", REPO / "benchmarks/model_quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_benchmark_says_so_and_skips_without_the_datasets(tmp_path, capsys):
    _benchmark().main(["--datasets", str(tmp_path / "absent")])
    assert "datasets not found" in capsys.readouterr().out


CASES = {
    "additive": (additive_frame, {"scorecard", "blend"}),
    "interaction": (interaction_frame, {"lightgbm"}),
}


@pytest.fixture(scope="module", params=list(CASES))
def trained(request, tmp_path_factory):
    """`creditrisk train` on a flat table with an out-of-time split, in a subprocess."""
    make, kinds = CASES[request.param]
    folder = tmp_path_factory.mktemp(f"champion-{request.param}")
    path = folder / "loans.csv"
    make().to_csv(path, index=False)
    options = ("--target", "default", "--id", "customer_id", "--time", "as_of")
    result = run_cli("train", "--data", str(path), *options, home=folder / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, folder / "home" / "mlflow.db", kinds


def _client(database) -> MlflowClient:
    return connect(f"sqlite:///{database.resolve()}")


def test_train_shows_the_choice_and_mlflow_records_it(trained):
    stdout, database, kinds = trained
    client = _client(database)
    model = client.search_registered_models()[0].name
    version = client.get_model_version(model, alias_version(client, model, "challenger"))
    run = client.get_run(version.run_id)
    chosen = run.data.params["champion_model"]
    assert chosen in kinds
    assert run.data.tags["champion_model"] == version.tags["champion_model"] == chosen
    assert "calibration half" in run.data.params["choice_on"]
    figures = {c: run.data.metrics[f"choice_auc_{c}"] for c in ("lightgbm", "scorecard", "blend")}
    assert run.data.metrics["lightgbm_weight"] == float(run.data.params["lightgbm_weight"])
    if chosen != "blend":
        assert figures[chosen] == max(figures["lightgbm"], figures["scorecard"])
    label = {"lightgbm": "LightGBM", "scorecard": "scorecard", "blend": "blend"}[chosen]
    assert f"{label} chosen" in stdout and "choice AUC" in stdout
    for candidate in ("LightGBM", "scorecard", "blend"):
        assert candidate in stdout
    assert run.data.metrics["auc"] == run.data.metrics[f"{chosen}_auc"]


def test_the_registered_scorer_scores_and_explains_the_chosen_model(trained):
    _stdout, database, _kinds = trained
    client = _client(database)
    model = client.search_registered_models()[0].name
    version = alias_version(client, model, "challenger")
    run_id = client.get_model_version(model, version).run_id
    metrics = client.get_run(run_id).data.metrics
    with tempfile.TemporaryDirectory() as tmp:
        scorer = load_scorer(client, model, version, tmp)
        frame = pd.read_parquet(client.download_artifacts(run_id, TEST_FRAME_ARTIFACT, tmp))
    assert scorer.lightgbm_weight == metrics["lightgbm_weight"]
    assert (scorer.scorecard is not None) == (scorer.lightgbm_weight < 1)
    assert (scorer.booster_model is not None) == (scorer.lightgbm_weight > 0)
    scored = scorer.score_frame(frame.drop(columns="default"))
    assert auc(frame["default"].to_numpy(), scored["pd"].to_numpy()) == pytest.approx(
        metrics["auc"], abs=1e-9
    )
    rows = frame.drop(columns="default").head(60)
    X = scorer.prepare(rows)
    contrib = scorer.contributions(X)
    np.testing.assert_allclose(contrib.sum(axis=1), scorer.log_odds(X), atol=1e-9)
    names = scorer.feature_names
    for i, value in enumerate(scorer.score_frame(rows)["reasons"]):
        reasons = json.loads(value)
        expected = [names[j] for j in np.argsort(-contrib[i, :-1], kind="stable")]
        expected = [f for f in expected if contrib[i, names.index(f)] > 0][: scorer.top_k]
        assert [r["feature"] for r in reasons] == expected
        assert all(r["contribution"] > 0 for r in reasons)
