"""Calibrate raw model scores to PDs on held-out data: isotonic or Platt, with a PD floor.

`PDCalibrator(method="auto")` picks the method with the lower log loss on an internal split of the
held-out data: out-of-time (earliest rows fit, the latest `oot_fraction` evaluate) when `time` is
passed to `fit`, stratified k-fold otherwise. The chosen method is then refit on all of it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from models.master_scale import PD_FLOOR
from models.validation import binary_labels

PD_CAP = 1.0 - 1e-6
METHODS = ("auto", "isotonic", "platt")
MIN_BLOCK_EVENTS = 20
MIN_BLOCKS = 5


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def sigmoid(z: ArrayLike) -> np.ndarray:
    """The logistic function 1 / (1 + e^-z), by tanh (no overflow for large |z|)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


def floor_pd(p: ArrayLike, floor: float = PD_FLOOR) -> np.ndarray:
    """PDs held in [floor, 1]: no customer is scored below the PD floor (0.03 %)."""
    return np.clip(np.asarray(p, dtype=float), floor, 1.0)


def fit_platt(x: np.ndarray, y: np.ndarray, max_iter: int = 100) -> tuple[float, float]:
    """Maximum-likelihood logistic fit p = sigmoid(a x + b) by Newton's method; returns (a, b)."""
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    design = np.column_stack([(x - mu) / sd, np.ones_like(x)])
    beta = np.array([0.0, float(_logit(np.array([y.mean()]))[0])])
    for _ in range(max_iter):
        p = sigmoid(design @ beta)
        grad = design.T @ (y - p)
        hess = (design * (p * (1 - p))[:, None]).T @ design + 1e-10 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    a = beta[0] / sd
    return float(a), float(beta[1] - a * mu)


def _pool_blocks(weight: np.ndarray, events: np.ndarray, min_events: float) -> np.ndarray:
    """Group ids pooling adjacent isotonic blocks until each group holds at least ``min_events``
    defaults and as many non-defaults; a short remainder joins the group before it."""
    group = np.zeros(weight.size, dtype=np.int64)
    current, w_sum, e_sum = 0, 0.0, 0.0
    for i in range(weight.size):
        group[i] = current
        w_sum, e_sum = w_sum + weight[i], e_sum + events[i]
        if e_sum >= min_events and w_sum - e_sum >= min_events:
            current, w_sum, e_sum = current + 1, 0.0, 0.0
    if w_sum > 0 and current > 0:
        group[group == current] = current - 1
    return group


def fit_isotonic_knots(
    x: np.ndarray, y: np.ndarray, min_block_events: float = MIN_BLOCK_EVENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic fit reduced to one knot per constant block at the block's mean score.

    Adjacent blocks are pooled until each holds ``min_block_events`` defaults and non-defaults:
    pool-adjacent-violators puts a few rows with no default at the low end (PD 0) and is biased
    low there, which underestimated the best grades out of sample. Pooling adjacent monotone
    blocks keeps the map monotone. On small samples the minimum drops so that at least
    `MIN_BLOCKS` blocks can remain. Linear interpolation between block centres (instead of
    sklearn's steps) spreads PDs out; beyond the end centres the end blocks' rates hold.
    """
    iso = IsotonicRegression(increasing="auto", out_of_bounds="clip").fit(x, y)
    xu, inverse = np.unique(x, return_inverse=True)
    weight = np.bincount(inverse).astype(float)
    events = np.bincount(inverse, y)
    fitted = iso.predict(xu)
    block = np.concatenate([[0], np.cumsum(np.abs(np.diff(fitted)) > 1e-12)])
    wsum = np.bincount(block, weight)
    minority = min(events.sum(), weight.sum() - events.sum())
    min_events = min(min_block_events, minority / MIN_BLOCKS)
    if min_events > 0:
        block = _pool_blocks(wsum, np.bincount(block, events), min_events)[block]
        wsum = np.bincount(block, weight)
    knots_x = np.bincount(block, weight * xu) / wsum
    knots_y = np.bincount(block, events) / wsum
    return knots_x, knots_y


class PDCalibrator(BaseEstimator):
    """Map raw scores to PDs in [floor, 1 - 1e-6] (scikit-learn style).

    Raw scores may be log-odds, probabilities or any monotone risk score. Platt fits on the logit
    of probability-like scores (all in [0, 1]) when `transform="auto"`, on the raw value otherwise.
    """

    def __init__(
        self,
        method: str = "auto",
        floor: float = PD_FLOOR,
        n_splits: int = 5,
        oot_fraction: float = 0.3,
        transform: str = "auto",
        random_state: int = 0,
        min_block_events: float = MIN_BLOCK_EVENTS,
    ):
        self.method = method
        self.floor = floor
        self.n_splits = n_splits
        self.oot_fraction = oot_fraction
        self.transform = transform
        self.random_state = random_state
        self.min_block_events = min_block_events

    def _x(self, raw: ArrayLike, transform: str) -> np.ndarray:
        x = np.asarray(raw, dtype=float).ravel()
        if not np.isfinite(x).all():
            raise ValueError("raw scores contain NaN or infinite values; score every row first")
        return _logit(x) if transform == "logit" else x

    def _fit_method(self, method: str, x: np.ndarray, y: np.ndarray) -> dict:
        if method == "platt":
            a, b = fit_platt(x, y)
            return {"method": "platt", "coef": a, "intercept": b}
        knots_x, knots_y = fit_isotonic_knots(x, y, self.min_block_events)
        return {"method": "isotonic", "knots_x": knots_x, "knots_y": knots_y}

    def _apply(self, state: dict, x: np.ndarray) -> np.ndarray:
        if state["method"] == "platt":
            p = sigmoid(state["coef"] * x + state["intercept"])
        else:
            p = np.interp(x, state["knots_x"], state["knots_y"])
        return np.clip(p, self.floor, PD_CAP)

    def _splits(self, y: np.ndarray, time: ArrayLike | None) -> tuple[str, list]:
        if time is not None:
            t = np.asarray(time).ravel()
            if t.size != y.size:
                raise ValueError(f"time has {t.size} values for {y.size} rows")
            cut = np.sort(t)[int((1 - self.oot_fraction) * t.size)]
            train, test = np.flatnonzero(t < cut), np.flatnonzero(t >= cut)
            if len(np.unique(y[train])) == 2 and test.size:
                return "out-of-time", [(train, test)]
        minority = int(min(y.sum(), y.size - y.sum()))
        k = min(self.n_splits, minority)
        if k < 2:
            return "none", []
        folds = StratifiedKFold(k, shuffle=True, random_state=self.random_state)
        return "stratified-kfold", list(folds.split(np.zeros(y.size), y))

    def _log_loss(self, method: str, x: np.ndarray, y: np.ndarray, splits: list) -> float:
        losses = []
        for train, test in splits:
            p = self._apply(self._fit_method(method, x[train], y[train]), x[test])
            losses.append(-(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p)))
        return float(np.mean(np.concatenate(losses)))

    def fit(self, raw_scores: ArrayLike, y: ArrayLike, time: ArrayLike | None = None):
        """Fit on held-out (not training) scores and 0/1 outcomes; `time` enables the OOT split."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not 0 < self.floor < 0.5:
            raise ValueError(f"floor must lie in (0, 0.5), got {self.floor}")
        yy = binary_labels(y)
        if yy.min() == yy.max():
            raise ValueError(
                "calibration needs both defaults and non-defaults in the held-out data"
            )
        raw = np.asarray(raw_scores, dtype=float).ravel()
        if raw.size != yy.size:
            raise ValueError(f"raw_scores has {raw.size} values for {yy.size} outcomes")
        if self.transform == "auto":
            probability_like = np.isfinite(raw).all() and raw.min() >= 0 and raw.max() <= 1
            self.transform_ = "logit" if probability_like else "identity"
        elif self.transform in ("logit", "identity"):
            self.transform_ = self.transform
        else:
            raise ValueError(f"transform must be 'auto', 'logit' or 'identity': {self.transform!r}")
        x = self._x(raw, self.transform_)
        self.selection_split_, splits = "none", []
        self.selection_log_loss_: dict[str, float] = {}
        chosen = self.method
        if self.method == "auto":
            self.selection_split_, splits = self._splits(yy, time)
            if splits:
                self.selection_log_loss_ = {
                    m: self._log_loss(m, x, yy, splits) for m in ("isotonic", "platt")
                }
                ll = self.selection_log_loss_
                chosen = "isotonic" if ll["isotonic"] < ll["platt"] else "platt"
            else:
                chosen = "platt"
        self.state_ = self._fit_method(chosen, x, yy)
        self.chosen_method_ = chosen
        return self

    def predict(self, raw_scores: ArrayLike) -> np.ndarray:
        """Calibrated PD for each raw score, clipped to [floor, 1 - 1e-6]."""
        if not hasattr(self, "state_"):
            raise RuntimeError("PDCalibrator is not fitted; call fit(raw_scores, y) first")
        return self._apply(self.state_, self._x(raw_scores, self.transform_))

    def predict_proba(self, raw_scores: ArrayLike) -> np.ndarray:
        """Columns [1 - PD, PD], as scikit-learn classifiers return them."""
        p = self.predict(raw_scores)
        return np.column_stack([1.0 - p, p])
