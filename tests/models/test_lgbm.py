import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.metrics import roc_auc_score

from models.lgbm import CV_FOLDS, LGBMPDClassifier, average_boosters, tune

TINY = {"objective": "binary", "num_leaves": 4, "bagging_fraction": 0.7, "bagging_freq": 1}
FAST = {"n_estimators": 40, "early_stopping_rounds": 10, "min_child_samples": 10}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 800
    X = pd.DataFrame(
        {
            "utilisation": rng.uniform(0, 1, n),
            "noise": rng.normal(size=n),
            "segment": pd.Categorical(rng.choice(["retail", "sme", "corporate"], n)),
        }
    )
    logit = 3 * X["utilisation"] - 1.5 + (X["segment"] == "sme") * 1.0 + rng.normal(0, 1, n)
    y = (logit > 0.5).astype(int).to_numpy()
    return X, y


def test_fit_predicts_probabilities_and_keeps_what_it_learned(data):
    X, y = data
    model = LGBMPDClassifier(**FAST).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert model.feature_names_ == ["utilisation", "noise", "segment"]
    assert model.categorical_features_ == ["segment"]
    assert len(model.fold_iterations_) == CV_FOLDS
    assert all(1 <= n <= 40 for n in model.fold_iterations_)
    assert model.best_iteration_ == sum(model.fold_iterations_)  # all fold trees, averaged
    logit = model.decision_function(X)
    assert np.allclose(proba[:, 1], 1 / (1 + np.exp(-logit)))
    assert model.feature_importance().index[0] == "utilisation"


def test_same_data_and_seed_give_the_same_predictions(data):
    X, y = data
    a = LGBMPDClassifier(**FAST).fit(X, y).predict_proba(X)
    b = LGBMPDClassifier(**FAST).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)


def test_averaged_booster_scores_and_explains_as_the_mean_of_its_models(data):
    X, y = data
    boosters = [
        lgb.train({**TINY, "seed": seed, "verbosity": -1}, lgb.Dataset(X, y), 5 + seed)
        for seed in range(3)
    ]
    merged = lgb.Booster(model_str=average_boosters([b.model_to_string() for b in boosters]))
    assert merged.num_trees() == 5 + 6 + 7
    raw = np.mean([b.predict(X, raw_score=True) for b in boosters], axis=0)
    contrib = np.mean([b.predict(X, pred_contrib=True) for b in boosters], axis=0)
    assert np.allclose(merged.predict(X, raw_score=True), raw, atol=1e-12)
    assert np.allclose(merged.predict(X, pred_contrib=True), contrib, atol=1e-12)
    linear = lgb.train({**TINY, "linear_tree": True, "verbosity": -1}, lgb.Dataset(X, y), 3)
    with pytest.raises(ValueError, match="plain gradient-boosted"):
        average_boosters([linear.model_to_string()] * 2)
    theirs = shap.TreeExplainer(merged).shap_values(X)
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    assert np.allclose(theirs, contrib[:, :-1], atol=1e-9)


def test_cross_fit_keeps_out_of_fold_scores(data):
    X, y = data
    model = LGBMPDClassifier(**FAST).fit(X, y)
    assert model.oof_raw_.shape == (len(y),)
    oof_auc = roc_auc_score(y, model.oof_raw_)
    in_sample_auc = roc_auc_score(y, model.decision_function(X))
    assert 0.7 < oof_auc < in_sample_auc  # honest out-of-fold, optimistic in-sample
    assert set(model.evals_result_) == {f"fold{k}" for k in range(CV_FOLDS)}
    with pytest.raises(ValueError, match="cv_folds"):
        LGBMPDClassifier(**FAST, cv_folds=1).fit(X, y)


def test_rare_defaults_mean_fewer_folds_and_too_few_a_clear_error(data):
    X, y = data
    rare = np.zeros_like(y)
    rare[np.flatnonzero(y)[:2]] = 1  # two defaults: two folds
    assert len(LGBMPDClassifier(**FAST).fit(X, rare).fold_iterations_) == 2 < CV_FOLDS
    rare[np.flatnonzero(rare)[:1]] = 0
    with pytest.raises(ValueError, match="at least 2 defaults"):
        LGBMPDClassifier(**FAST).fit(X, rare)


def test_eval_set_is_used_for_early_stopping(data):
    X, y = data
    model = LGBMPDClassifier(**FAST).fit(X.iloc[:600], y[:600], eval_set=(X.iloc[600:], y[600:]))
    assert len(model.evals_result_["valid"]["binary_logloss"]) >= model.best_iteration_


def test_columns_are_reordered_by_name_at_predict(data):
    X, y = data
    model = LGBMPDClassifier(**FAST).fit(X, y)
    assert np.array_equal(
        model.predict_proba(X[["segment", "noise", "utilisation"]]), model.predict_proba(X)
    )
    with pytest.raises(KeyError, match="noise"):
        model.predict_proba(X.drop(columns=["noise"]))


def test_unseen_category_scores(data):
    X, y = data
    model = LGBMPDClassifier(**FAST).fit(X, y)
    new = X.head(3).copy()
    new["segment"] = pd.Categorical(["unknown", "sme", "retail"])
    assert np.isfinite(model.predict_proba(new)).all()


def test_monotone_constraint_makes_risk_rise_with_the_feature():
    rng = np.random.default_rng(0)
    n = 1000
    x = rng.uniform(0, 1, n)
    # A dip in the middle that an unconstrained model would learn.
    p = np.clip(0.2 + 0.6 * x - 0.4 * ((x > 0.4) & (x < 0.6)), 0.01, 0.99)
    y = (rng.uniform(size=n) < p).astype(int)
    X = pd.DataFrame({"x": x, "z": rng.normal(size=n)})
    grid = pd.DataFrame({"x": np.linspace(0, 1, 101), "z": 0.0})
    model = LGBMPDClassifier(**FAST, monotone_constraints={"x": 1}).fit(X, y)
    assert np.all(np.diff(model.predict_proba(grid)[:, 1]) >= 0)
    assert model.lgb_params(["x", "z"])["monotone_constraints"] == [1, 0]


def test_bad_constraints_say_what_is_wrong(data):
    X, y = data
    with pytest.raises(KeyError, match="absent"):
        LGBMPDClassifier(**FAST, monotone_constraints={"missing": 1}).fit(X, y)
    with pytest.raises(ValueError, match="categorical"):
        LGBMPDClassifier(**FAST, monotone_constraints={"segment": 1}).fit(X, y)


def test_missing_labels_are_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="unmatured"):
        LGBMPDClassifier(**FAST).fit(X, np.where(np.arange(len(y)) == 0, np.nan, y))


def test_tune_calls_back_per_trial_and_returns_parameters(data):
    X, y = data
    seen = []
    best = tune(
        X.iloc[:600],
        y[:600],
        X.iloc[600:],
        y[600:],
        n_trials=2,
        n_estimators=30,
        early_stopping_rounds=10,
        callback=lambda number, params, auc: seen.append((number, auc)),
    )
    assert [n for n, _ in seen] == [0, 1]
    assert all(0.0 <= auc <= 1.0 for _, auc in seen)
    assert seen[0][1] > 0.7  # trial 0 is the defaults
    assert set(best) == {
        "learning_rate",
        "num_leaves",
        "min_child_samples",
        "feature_fraction",
        "bagging_fraction",
        "lambda_l2",
    }
    assert LGBMPDClassifier(**best).get_params()["num_leaves"] == best["num_leaves"]
