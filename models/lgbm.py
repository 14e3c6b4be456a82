"""LightGBM PD classifier: one set of defaults for every table, early stopping, monotonicity.

The defaults (slow learning rate, small leaves, large leaf minimum, row and column subsampling,
L2) were chosen once for credit tables of 10^4..10^6 rows and are the same for every dataset.
Learning rate 0.03, up to 2000 rounds, patience 100: 0.02 / 5000 / 200 was on par on inner
validation folds of the real datasets (and a little better on the synthetic book) at twice the
rounds. Training is deterministic: fixed seed, `deterministic=True`, fixed thread count.

Without a validation set (tables with no time column), the model is cross-fitted: one booster
per stratified fold (three), each early-stopped on its held-out fold, averaged into a single
booster (`average_boosters`), so every row trains and no row is spent only on stopping; the
out-of-fold scores (`oof_raw_`) are what the choice of champion reads (`models.champion`). The
averaged boosters may each learn faster (`CROSS_FIT_PARAMS`, learning rate 0.1, patience 30):
on the real datasets that ranked as well as 0.03 / 100 over five folds at a fraction of the
fitting time (BENCHMARKS.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold

from models.names import lightgbm_frame
from models.validation import auc as roc_auc
from models.validation import binary_labels

SEED = 42
DEFAULT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 100,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "max_bin": 255,
    "cat_smooth": 10.0,
    "cat_l2": 10.0,
}
CV_FOLDS = 3
EARLY_STOPPING_ROUNDS = 100
CROSS_FIT_PARAMS: dict[str, Any] = {"learning_rate": 0.1, "early_stopping_rounds": 30}


def average_boosters(model_strings: list[str]) -> str:
    """One LightGBM model text whose raw score (and TreeSHAP contributions) is the mean of the
    given models': their trees side by side, leaf values divided by their number. The models must
    share features and objective (fold models of one fit do); linear trees and random forests
    are refused (their outputs are not only leaf values)."""
    for text in model_strings:
        if "is_linear=1" in text or "average_output" in text:
            raise ValueError("average_boosters needs plain gradient-boosted trees")
    k = len(model_strings)
    head = model_strings[0].partition("\nTree=")[0]
    head = "\n".join(line for line in head.split("\n") if not line.startswith("tree_sizes="))
    tail = model_strings[0].partition("end of trees")[2]
    trees: list[str] = []
    for text in model_strings:
        body = "Tree=" + text.partition("\nTree=")[2].partition("end of trees")[0]
        for block in re.split(r"\n\n\n(?=Tree=)", body.strip("\n")):
            lines = []
            for line in block.strip("\n").split("\n"):
                key, sep, value = line.partition("=")
                if key in ("leaf_value", "internal_value"):
                    value = " ".join(repr(float(x) / k) for x in value.split())
                elif key == "Tree":
                    value = str(len(trees))
                lines.append(f"{key}{sep}{value}")
            trees.append("\n".join(lines))
    return head + "\n" + "".join(t + "\n\n\n" for t in trees) + "end of trees" + tail


def _as_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=float)
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


class LGBMPDClassifier(ClassifierMixin, BaseEstimator):
    """Binary LightGBM for PDs with early stopping on a validation set.

    Without `eval_set`, cross-fitted over `cv_folds` stratified folds (see the module docstring);
    `oof_raw_` then holds each training row's log-odds from the booster that did not see it.
    `monotone_constraints` maps feature -> +1 (risk rises with the value) / -1 (falls).
    """

    def __init__(
        self,
        learning_rate: float = DEFAULT_PARAMS["learning_rate"],
        num_leaves: int = DEFAULT_PARAMS["num_leaves"],
        min_child_samples: int = DEFAULT_PARAMS["min_child_samples"],
        feature_fraction: float = DEFAULT_PARAMS["feature_fraction"],
        bagging_fraction: float = DEFAULT_PARAMS["bagging_fraction"],
        bagging_freq: int = DEFAULT_PARAMS["bagging_freq"],
        lambda_l2: float = DEFAULT_PARAMS["lambda_l2"],
        max_bin: int = DEFAULT_PARAMS["max_bin"],
        cat_smooth: float = DEFAULT_PARAMS["cat_smooth"],
        cat_l2: float = DEFAULT_PARAMS["cat_l2"],
        n_estimators: int = 2000,
        early_stopping_rounds: int = EARLY_STOPPING_ROUNDS,
        cv_folds: int = CV_FOLDS,
        monotone_constraints: Mapping[str, int] | None = None,
        seed: int = SEED,
        n_jobs: int = 2,
    ):
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.bagging_freq = bagging_freq
        self.lambda_l2 = lambda_l2
        self.max_bin = max_bin
        self.cat_smooth = cat_smooth
        self.cat_l2 = cat_l2
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.cv_folds = cv_folds
        self.monotone_constraints = monotone_constraints
        self.seed = seed
        self.n_jobs = n_jobs

    def lgb_params(self, feature_names: list[str] | None = None) -> dict[str, Any]:
        """The parameter dict passed to `lightgbm.train` (deterministic, quiet)."""
        params = {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "max_bin": self.max_bin,
            "cat_smooth": self.cat_smooth,
            "cat_l2": self.cat_l2,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.n_jobs,
            "verbosity": -1,
        }
        if self.monotone_constraints and feature_names is not None:
            unknown = set(self.monotone_constraints) - set(feature_names)
            if unknown:
                raise KeyError(f"monotone constraints for absent features: {sorted(unknown)}")
            params["monotone_constraints"] = [
                int(self.monotone_constraints.get(f, 0)) for f in feature_names
            ]
            params["monotone_constraints_method"] = "intermediate"
        return params

    def fit(self, X, y, eval_set: tuple[Any, Any] | None = None, client=None) -> LGBMPDClassifier:
        """Fit here, or with a Dask ``client`` on its cluster (`models.dask_lgbm`)."""
        X = _as_frame(X)
        y = binary_labels(y)
        self.feature_names_ = [str(c) for c in X.columns]
        self.categorical_features_ = [
            c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)
        ]
        for c in self.categorical_features_:
            if self.monotone_constraints and self.monotone_constraints.get(c, 0):
                raise ValueError(f"categorical feature {c!r} cannot carry a monotone constraint")
        params = self.lgb_params(self.feature_names_)
        if eval_set is not None:
            X_val = _as_frame(eval_set[0])[self.feature_names_]
            booster, self.evals_result_ = self._train(params, X, y, X_val, eval_set[1], client)
            self.booster_ = booster
            self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
            self.fold_iterations_ = [self.best_iteration_]
            self.__dict__.pop("oof_raw_", None)  # from an earlier cross-fit
        else:
            self._cross_fit(params, X, y, client)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(self.feature_names_)
        return self

    def _train(self, params, X, y, X_val, y_val, client=None) -> tuple[lgb.Booster, dict]:
        if client is not None:
            from models.dask_lgbm import fit_booster

            return fit_booster(
                client, params, X, y, X_val, y_val, self.n_estimators, self.early_stopping_rounds
            )
        train = lgb.Dataset(lightgbm_frame(X), y, free_raw_data=True)
        valid = lgb.Dataset(lightgbm_frame(X_val), np.asarray(y_val, dtype=float), reference=train)
        evals: dict = {}
        booster = lgb.train(
            params,
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[
                lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                lgb.record_evaluation(evals),
            ],
        )
        return booster, evals

    def cross_fit_folds(self, y) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (train, held) positions a cross-fit on labels ``y`` uses: `cv_folds` stratified
        folds shuffled with the seed, fewer when defaults are rare."""
        y = binary_labels(y)
        if self.cv_folds < 2:
            raise ValueError("cv_folds must be at least 2 when no eval_set is given")
        n_folds = min(self.cv_folds, int(min(y.sum(), len(y) - y.sum())))  # rare defaults
        if n_folds < 2:
            raise ValueError(
                "cross-fitting needs at least 2 defaults and 2 non-defaults; "
                f"got {int(y.sum())} of {len(y)} rows defaulted"
            )
        folds = StratifiedKFold(n_folds, shuffle=True, random_state=self.seed)
        return list(folds.split(np.zeros(len(y)), y))

    def _cross_fit(self, params, X: pd.DataFrame, y: np.ndarray, client=None) -> None:
        folds = self.cross_fit_folds(y)
        self.oof_raw_ = np.empty(len(y))
        self.evals_result_, self.fold_iterations_, texts = {}, [], []
        for k, (tr, va) in enumerate(folds):
            booster, evals = self._train(params, X.iloc[tr], y[tr], X.iloc[va], y[va], client)
            best = int(booster.best_iteration or booster.current_iteration())
            self.oof_raw_[va] = booster.predict(X.iloc[va], num_iteration=best, raw_score=True)
            self.evals_result_[f"fold{k}"] = evals["valid"]
            self.fold_iterations_.append(best)
            texts.append(booster.model_to_string(num_iteration=best))
        self.booster_ = lgb.Booster(model_str=average_boosters(texts))
        self.best_iteration_ = int(self.booster_.current_iteration())

    def _matrix(self, X) -> pd.DataFrame:
        X = _as_frame(X)
        absent = [c for c in self.feature_names_ if c not in X.columns]
        if absent:
            raise KeyError(f"features {absent} missing; score with the columns the model saw")
        return X[self.feature_names_]

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of default."""
        return self.booster_.predict(
            self._matrix(X), num_iteration=self.best_iteration_, raw_score=True
        )

    def predict_proba(self, X) -> np.ndarray:
        p = self.booster_.predict(self._matrix(X), num_iteration=self.best_iteration_)
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def feature_importance(self, kind: str = "gain") -> pd.Series:
        """Importance per feature over the kept trees, largest first."""
        imp = self.booster_.feature_importance(kind, iteration=self.best_iteration_)
        return pd.Series(imp, index=self.feature_names_).sort_values(ascending=False)


def tune(
    X,
    y,
    X_val,
    y_val,
    n_trials: int = 20,
    timeout: float | None = None,
    callback: Callable[[int, dict[str, Any], float], None] | None = None,
    seed: int = SEED,
    monotone_constraints: Mapping[str, int] | None = None,
    **fixed: Any,
) -> dict[str, Any]:
    """Search LightGBM parameters with optuna (seeded TPE) by validation AUC; best params out.

    `callback(trial_number, params, auc)` runs after every trial (the caller logs nested MLflow
    runs there). Trial 0 is the defaults, so tuning never ends worse than them on X_val.
    `fixed` holds other LGBMPDClassifier parameters kept the same in every trial.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 20, 400, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-2, 100.0, log=True),
        }
        model = LGBMPDClassifier(
            **params, **fixed, seed=seed, monotone_constraints=monotone_constraints
        )
        model.fit(X, y, eval_set=(X_val, y_val))
        auc = roc_auc(y_val, model.predict_proba(X_val)[:, 1])
        trial.set_user_attr("best_iteration", model.best_iteration_)
        if callback is not None:
            callback(trial.number, params, auc)
        return auc

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: DEFAULT_PARAMS[k] for k in _TUNED})
    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    return dict(study.best_params)


_TUNED = (
    "learning_rate",
    "num_leaves",
    "min_child_samples",
    "feature_fraction",
    "bagging_fraction",
    "lambda_l2",
)
