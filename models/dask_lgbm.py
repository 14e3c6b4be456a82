"""LightGBM fitted on a Dask cluster (`lightgbm.DaskLGBMClassifier`), early-stopped as at home.

`models.lgbm.LGBMPDClassifier.fit(..., client=...)` comes here: the same parameters (monotone
constraints included) under the estimator's names, one chunk of the training rows per worker,
LightGBM's data-parallel learner across them, and the local booster (`to_local().booster_`)
back into the usual scorer path.

lightgbm.dask has no early stopping (each worker's callback sees only its own share of the
validation rows, and workers stopping at different rounds fail the fit: LightGBM issues 3712,
6197). So the cluster fits every round and the driver stops them: the validation log-loss after
each tree, from the local booster, and the round `lightgbm.early_stopping` would have stopped
at, with the same patience; the booster is cut there.
LightGBM's distributed learners enforce the monotone constraints by its "basic" method only
(it switches to it by itself, from "intermediate"): the same constraints, held more strictly.

Ports: neither ``local_listen_port`` nor ``machines`` is set, so each worker reserves a free port
of its own (lightgbm.dask's default) and concurrent fits cannot collide. LightGBM's listener
itself binds every interface while a fit runs (its C++ sockets bind 0.0.0.0): run the workers
on a private network. ``time_out`` (minutes) bounds a fit whose peer died.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.names import lightgbm_frame

NETWORK_TIMEOUT_MINUTES = 10
CONNECT_TIMEOUT = "20s"
LEAF_CHUNK = 200  # trees per pred_leaf call while tracing the validation loss (memory)
# LightGBM's own names -> DaskLGBMClassifier's (scikit-learn) names: passing both an alias and
# the estimator's default would leave LightGBM to pick one.
ESTIMATOR_NAMES = {
    "learning_rate": "learning_rate",
    "num_leaves": "num_leaves",
    "min_child_samples": "min_child_samples",
    "feature_fraction": "colsample_bytree",
    "bagging_fraction": "subsample",
    "bagging_freq": "subsample_freq",
    "lambda_l2": "reg_lambda",
    "seed": "random_state",
}
DROPPED = ("num_threads",)  # lightgbm.dask sets each worker's threads to its own


@contextmanager
def dask_client(address: str | None) -> Iterator[Any]:
    """A Dask client on the scheduler at ``address`` for the block, or None without one (then
    nothing imports Dask). Fails with OSError when the scheduler does not answer."""
    if address is None:
        yield None
        return
    from distributed import Client

    with Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False) as client:
        yield client


def estimator_params(params: dict[str, Any]) -> dict[str, Any]:
    """`LGBMPDClassifier.lgb_params` under the names DaskLGBMClassifier takes."""
    out = {ESTIMATOR_NAMES.get(k, k): v for k, v in params.items() if k not in DROPPED}
    return out | {"time_out": NETWORK_TIMEOUT_MINUTES}


def _chunks_on_workers(client, X: pd.DataFrame, y: np.ndarray):
    """X and y as Dask collections of one chunk per worker, each chunk scattered to its worker
    (rows and labels together), so every worker trains on its share."""
    import dask.dataframe as dd

    workers = sorted(client.nthreads())
    if not workers:
        raise OSError("the Dask cluster has no workers")
    bounds = np.linspace(0, len(X), len(workers) + 1).astype(int)
    labels = pd.Series(np.asarray(y, dtype=float), index=X.index, name="label")
    x_parts, y_parts = [], []
    for (start, stop), worker in zip(pairwise(bounds), workers, strict=True):
        if stop > start:
            x_parts.append(client.scatter(X.iloc[start:stop], workers=[worker], hash=False))
            y_parts.append(client.scatter(labels.iloc[start:stop], workers=[worker], hash=False))
    return (
        dd.from_delayed(x_parts, meta=X.iloc[:0], verify_meta=False),
        dd.from_delayed(y_parts, meta=labels.iloc[:0], verify_meta=False),
    )


def validation_loss(booster: lgb.Booster, X_val: pd.DataFrame, y_val) -> np.ndarray:
    """Binary log-loss of ``X_val`` after each tree of ``booster`` (the curve LightGBM's
    ``valid`` set records), from each tree's leaf values: no prediction per round."""
    y = np.asarray(y_val, dtype=float)
    raw = np.zeros(len(y))
    n_trees = booster.num_trees()
    losses = np.empty(n_trees)
    for first in range(0, n_trees, LEAF_CHUNK):
        count = min(LEAF_CHUNK, n_trees - first)
        leaves = booster.predict(X_val, pred_leaf=True, start_iteration=first, num_iteration=count)
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(y), count)
        for j in range(count):
            tree = first + j
            seen = np.unique(leaves[:, j])
            values = np.zeros(int(seen.max()) + 1 if len(seen) else 1)
            for leaf in seen:
                values[leaf] = booster.get_leaf_output(tree, int(leaf))
            raw += values[leaves[:, j]]
            losses[tree] = np.mean(np.logaddexp(0.0, raw) - y * raw)
    return losses


def stopping_round(losses: np.ndarray, patience: int) -> tuple[int, int]:
    """(best iteration, last round run) as `lightgbm.early_stopping` would give on this curve:
    the best round so far, stopping once ``patience`` rounds passed without a strictly lower
    loss (or at the last round)."""
    best, best_at = np.inf, 0
    for i, loss in enumerate(losses):
        if loss < best:
            best, best_at = loss, i
        elif i - best_at >= patience:
            return best_at + 1, i + 1
    return best_at + 1, len(losses)


def fit_booster(
    client,
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    X_val: pd.DataFrame,
    y_val,
    n_estimators: int,
    patience: int,
) -> tuple[lgb.Booster, dict]:
    """`LGBMPDClassifier._train` on the cluster: (booster cut at its best iteration, with
    ``best_iteration`` set; the validation curve up to where early stopping stopped)."""
    from lightgbm import DaskLGBMClassifier

    X_dd, y_dd = _chunks_on_workers(client, lightgbm_frame(X), y)
    model = DaskLGBMClassifier(client=client, n_estimators=n_estimators, **estimator_params(params))
    # lightgbm.dask waits on the current client; it sets each worker's threads, and says so
    with client.as_current(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
        model.fit(X_dd, y_dd)
    booster = model.to_local().booster_
    losses = validation_loss(booster, lightgbm_frame(X_val), y_val)
    best, ran = stopping_round(losses, patience)
    cut = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    cut.best_iteration = best
    return cut, {"valid": {"binary_logloss": losses[:ran].tolist()}}
