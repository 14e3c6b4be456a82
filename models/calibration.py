"""Calibrate raw model scores to PDs on held-out data: isotonic or Platt, with a PD floor.

Both maps are strictly monotone, so the model's ranking survives calibration: Platt is a line in
log-odds; isotonic places knots at its pooled blocks and fits, by maximum likelihood, log-odds
that rise by pieces between them and by lines beyond the end blocks (a flat tail gave the best
quarter of a book one shared PD).

`PDCalibrator(method="auto")` picks the method with the lower log loss on an internal split of the
held-out data: out-of-time (earliest rows fit, the latest `oot_fraction` evaluate) when `time` is
passed to `fit`, stratified k-fold otherwise. The chosen method is then refit on all of it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from models.master_scale import PD_FLOOR
from models.validation import binary_labels

PD_CAP = 1.0 - 1e-6
METHODS = ("auto", "isotonic", "platt")
MIN_BLOCK_EVENTS = 40
MIN_BLOCKS = 5
MIN_SLOPE_SHARE = 0.05  # of the Platt slope: the least rise of log-odds per unit of score
MAX_SCORE_GROUPS = 4096


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
    `MIN_BLOCKS` blocks can remain. The knots sit at the blocks' mean scores;
    `fit_monotone_log_odds` joins them.
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


def _score_groups(u: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean score, rows and defaults per distinct score, or per quantile bin of the scores when
    they take more than `MAX_SCORE_GROUPS` values (the fit then costs the same on 1M rows)."""
    values, group = np.unique(u, return_inverse=True)
    if values.size > MAX_SCORE_GROUPS:
        edges = np.quantile(u, np.linspace(0, 1, MAX_SCORE_GROUPS + 1)[1:-1])
        group = np.unique(np.searchsorted(edges, u), return_inverse=True)[1]
    weight = np.bincount(group).astype(float)
    return np.bincount(group, u) / weight, weight, np.bincount(group, y)


def _spline_basis(u: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Columns whose combination is the monotone line-by-pieces in log-odds: a constant, one
    ramp per gap between knots (0 before it, 1 after), and the two tails beyond the end knots."""
    gaps = np.diff(knots)
    ramps = np.clip((u[:, None] - knots[None, :-1]) / np.where(gaps > 0, gaps, 1.0), 0, 1)
    low = np.minimum(u - knots[0], 0)[:, None]
    high = np.maximum(u - knots[-1], 0)[:, None]
    return np.hstack([np.ones((u.size, 1)), ramps, low, high])


def fit_monotone_log_odds(
    x: np.ndarray, y: np.ndarray, knots_x: np.ndarray, knots_y: np.ndarray
) -> dict:
    """Maximum-likelihood log-odds through the knots, strictly monotone: linear between them,
    lines beyond the end knots (tails) whose slopes the end rows' outcomes set.

    Every piece keeps at least `MIN_SLOPE_SHARE` of the Platt slope (no flat stretch: the PD
    keeps the model's ranking) and the tails at most the Platt slope (no extrapolation more
    optimistic, or more severe, than the logistic fit of all rows). The direction is the
    isotonic fit's. Returns the state `monotone_log_odds` reads.
    """
    orientation = 1.0 if knots_y[-1] >= knots_y[0] else -1.0
    u, knots = orientation * x, orientation * knots_x[:: -1 if orientation < 0 else 1]
    rates = knots_y[:: -1 if orientation < 0 else 1]
    platt = max(fit_platt(u, y)[0], 1e-6)
    points, weight, events = _score_groups(u, y)
    basis = _spline_basis(points, knots)
    least, most = MIN_SLOPE_SHARE * platt, platt
    gaps = np.diff(knots)
    bounds = [(None, None)] + [(least * g, None) for g in gaps] + [(least, most)] * 2
    z = _logit(np.clip(rates, 1e-4, 1 - 1e-4))
    start = np.concatenate([[z[0]], np.maximum(np.diff(z), least * gaps), [platt, platt]])

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = basis @ beta
        value = np.sum(weight * np.logaddexp(0, eta) - events * eta)
        return float(value), basis.T @ (weight * sigmoid(eta) - events)

    with threadpool_limits(1, user_api="blas"):  # threads cost more than these small products
        beta = optimize.minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds).x
    values = beta[0] + np.concatenate([[0.0], np.cumsum(beta[1 : knots.size])])
    return {"orientation": orientation, "knots": knots, "values": values, "tails": beta[-2:]}


def monotone_log_odds(state: dict, x: np.ndarray) -> np.ndarray:
    """Log-odds of the fitted monotone spline at the scores ``x``."""
    u, knots, values = state["orientation"] * x, state["knots"], state["values"]
    low, high = state["tails"]
    z = np.interp(u, knots, values)
    z = np.where(u < knots[0], values[0] + low * (u - knots[0]), z)
    return np.where(u > knots[-1], values[-1] + high * (u - knots[-1]), z)


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
        spline = fit_monotone_log_odds(x, y, knots_x, knots_y)
        return {"method": "isotonic", "knots_x": knots_x, "knots_y": knots_y, "spline": spline}

    def _apply(self, state: dict, x: np.ndarray) -> np.ndarray:
        if state["method"] == "platt":
            p = sigmoid(state["coef"] * x + state["intercept"])
        elif "spline" in state:
            p = sigmoid(monotone_log_odds(state["spline"], x))
        else:  # fitted before tails were extrapolated: linear between knots, flat beyond
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
