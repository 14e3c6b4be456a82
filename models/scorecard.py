"""WOE logistic scorecard: the interpretable champion candidate beside LightGBM (alone or blended).

Optimal binning (optbinning's OptimalBinning per variable, as its BinningProcess fits them, less
the quality analysis the process adds for its summary: trend chosen by optbinning, bins of at
least 5 % of rows, missing values and common special codes in bins of their own, text columns as
categories), WOE encoding, features kept when IV >= 0.02, an L2 logistic regression on the WOE
values with wrong-sign features removed, and points scaled as everywhere else (`models.scaling`).
`scorecard_matrix` gives the scorecard its input from LightGBM's prepared matrix (sentinel codes
put back), so both candidates of the champion (`models.champion`) score the same prepared rows.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import numpy as np
import pandas as pd
from optbinning import OptimalBinning
from scipy.special import xlogy
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from models.calibration import sigmoid
from models.prepare import (
    SPECIAL_SUFFIX,
    TablePreparer,
    TrainingInputError,
    is_text,
    sentinel_codes,
)
from models.scaling import BASE_ODDS, BASE_SCORE, PDO, factor_offset
from models.validation import binary_labels

PARALLEL_CELLS, PARALLEL_JOBS = 1_000_000, 2  # bin variables in 2 threads on large inputs
TRENDS = {1: "ascending", -1: "descending"}  # default rate over the value, as optbinning says
FEATURE_THRESHOLD = np.float32(1e-7)  # sklearn's trees: float32 values closer count as equal
WOE_METRICS = {"metric": "woe", "metric_special": "empirical", "metric_missing": "empirical"}


class WOEScorecard(ClassifierMixin, BaseEstimator):
    """Binning -> WOE -> logistic regression -> points (base score at base odds, pdo).

    `special_codes` maps column -> codes binned apart; with `detect_special` numeric columns
    not in the map get `models.prepare.sentinel_codes` held by at least `min_bin_size` of rows
    (rarer codes are binned with their neighbouring values: a tiny special bin has a noisy WOE,
    and codes shared by the same rows in several columns, as Give Me Some Credit's 96/98, make
    collinear WOE columns whose flipped signs cost whole features). Text columns are categorical.
    `monotone` maps feature -> +1/-1: its default rate must rise/fall over the bins. `n_jobs`
    threads bin the variables (default: 2 from a million cells, else 1).
    """

    def __init__(
        self,
        min_bin_size: float = 0.05,
        max_n_prebins: int = 20,
        monotonic_trend: str = "auto",
        monotone: Mapping[str, int] | None = None,
        min_iv: float = 0.02,
        C: float = 1.0,
        special_codes: Mapping[str, Sequence[float]] | None = None,
        detect_special: bool = True,
        base_score: float = BASE_SCORE,
        base_odds: float = BASE_ODDS,
        pdo: float = PDO,
        n_jobs: int | None = None,
    ):
        self.min_bin_size = min_bin_size
        self.max_n_prebins = max_n_prebins
        self.monotonic_trend = monotonic_trend
        self.monotone = monotone
        self.min_iv = min_iv
        self.C = C
        self.special_codes = special_codes
        self.detect_special = detect_special
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo
        self.n_jobs = n_jobs

    def _binning_input(self, X: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        """Category columns as plain text (optbinning's categorical input), numbers as float."""
        cols = {}
        for c in columns:
            s = X[c]
            if c not in self.categorical_:
                cols[c] = pd.to_numeric(s, errors="coerce").astype(float)
            elif isinstance(s.dtype, pd.CategoricalDtype):  # per category, not per row
                text = s.cat.categories.map(str).to_numpy(dtype=object)
                codes = s.cat.codes.to_numpy()
                cols[c] = np.where(codes >= 0, text[codes], np.nan)
            else:
                cols[c] = s.astype(object).map(str).where(s.notna(), np.nan)
        return pd.DataFrame(cols, index=X.index)

    def _fit_params(self, data: pd.DataFrame, y: np.ndarray) -> dict[str, dict]:
        """optbinning's parameters per variable, from the binning input (numbers as floats)."""
        params: dict[str, dict] = {}
        given = dict(self.special_codes or {})
        trends = {c: TRENDS[int(d)] for c, d in (self.monotone or {}).items() if int(d)}
        for c in self.variables_:
            p: dict = {}
            if c not in self.categorical_:
                v = data[c].to_numpy()
                p["monotonic_trend"] = trends.get(c, self.monotonic_trend)
                codes = given.get(c)
                if codes is None and self.detect_special:
                    codes = [
                        k for k in sentinel_codes(data[c]) if (v == k).mean() >= self.min_bin_size
                    ]  # only codes held by min_bin_size of the rows get a bin of their own
                if codes:
                    p["special_codes"] = {f"{k:g}": [float(k)] for k in codes}
                splits = self._prebins(v, y, codes or [])
                if splits.size:  # else optbinning finds none either
                    p["user_splits"] = splits
            params[c] = p
        return params

    def _prebins(self, v: np.ndarray, y: np.ndarray, codes: Sequence[float]) -> np.ndarray:
        """optbinning's "cart" pre-binning of a numeric column, by `cart_prebins` (a third of the
        time): rows neither missing nor special codes, leaves of min_prebin_size of all rows."""
        clean = ~np.isnan(v) & ~np.isin(v, np.asarray(codes, dtype=float))
        min_leaf = int(np.ceil(self._min_prebin_size() * v.size))
        return cart_prebins(v[clean], y[clean], self.max_n_prebins, min_leaf)

    def _min_prebin_size(self) -> float:
        return min(self.min_bin_size, 0.05)

    def fit(self, X: pd.DataFrame, y) -> WOEScorecard:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("WOEScorecard needs a pandas DataFrame with named columns")
        y = binary_labels(y)
        self.variables_ = [str(c) for c in X.columns]
        self.categorical_ = [c for c in self.variables_ if is_text(X[c])]
        data = self._binning_input(X, self.variables_)
        fit_params = self._fit_params(data, y)
        self.special_codes_ = {
            c: [float(v) for v in p["special_codes"]]
            for c, p in fit_params.items()
            if "special_codes" in p
        }
        n_jobs = self.n_jobs or (PARALLEL_JOBS if X.size >= PARALLEL_CELLS else 1)
        self.binnings_ = self._fit_binnings(data, y.astype(int), fit_params, n_jobs)
        iv = {c: information_value(self.binnings_[c]) for c in self.variables_}
        self.iv_ = pd.Series(iv, dtype=float).sort_values(ascending=False)
        selected = [c for c in self.variables_ if iv[c] >= self.min_iv]
        if not selected:
            raise TrainingInputError(
                f"no feature reaches the scorecard's min_iv (information value {self.min_iv:g}); "
                f"the strongest, {self.iv_.index[0]!r}, has {self.iv_.iloc[0]:.4f}",
                hint="add columns related to the outcome, or check the target column",
            )
        woe = self._woe(X, selected)
        self.features_, self.estimator_ = self._fit_right_signs(woe, y, selected)
        self.woe_mean_ = woe[self.features_].mean()
        self.coef_ = pd.Series(self.estimator_.coef_[0], index=self.features_)
        self.intercept_ = float(self.estimator_.intercept_[0])
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(self.variables_)
        for lazy in ("scorecard_table_", "best_points_"):  # from an earlier fit
            self.__dict__.pop(lazy, None)
        return self

    def _fit_binnings(self, data: pd.DataFrame, y: np.ndarray, fit_params, n_jobs: int):
        """One `OptimalBinning` per variable with optbinning's `BinningProcess` settings (and
        ``fit_params``), in ``n_jobs`` threads; name -> fitted binning."""

        def fit_one(name: str) -> OptimalBinning:
            dtype = "categorical" if name in self.categorical_ else "numerical"
            binning = OptimalBinning(
                name=name,
                dtype=dtype,
                max_n_prebins=self.max_n_prebins,
                min_prebin_size=self._min_prebin_size(),
                min_bin_size=self.min_bin_size,
            )
            return binning.set_params(**fit_params[name]).fit(data[name], y)

        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            return dict(zip(self.variables_, pool.map(fit_one, self.variables_), strict=True))

    @cached_property
    def scorecard_table_(self) -> pd.DataFrame:
        """One row per bin of each kept feature: count, event rate, WOE, IV, coefficient and
        points (built on first use: refits for the choice of champion never read it)."""
        return self._table()

    @cached_property
    def best_points_(self) -> pd.Series:
        """Each kept feature's points in its best populated bin."""
        best = self.scorecard_table_[self.scorecard_table_["count"] > 0]
        return best.groupby("feature")["points"].max().reindex(self.features_)

    def _fit_right_signs(self, woe: pd.DataFrame, y: np.ndarray, features: list[str]):
        """Refit without the worst wrong-sign feature until every WOE coefficient is negative.

        A positive coefficient on WOE (higher WOE = fewer defaults) means collinearity flipped the
        feature's meaning; a scorecard must not give points for the risky side.
        """
        features = list(features)
        while True:
            lr = LogisticRegression(C=self.C, max_iter=1000)
            lr.fit(woe[features].to_numpy(), y)
            coef = lr.coef_[0]
            if coef.max() <= 0 or len(features) == 1:
                return features, lr
            features.pop(int(np.argmax(coef)))

    def _woe(self, X: pd.DataFrame, features: list[str] | None = None) -> pd.DataFrame:
        """WOE of ``features`` (default: the kept ones), transformed one binned variable each."""
        features = features or self.features_
        data = self._binning_input(X, features)
        return pd.DataFrame(
            {f: self.binnings_[f].transform(data[f], **WOE_METRICS) for f in features},
            index=X.index,
        )

    def _factor_offset(self) -> tuple[float, float]:
        return factor_offset(self.base_score, self.base_odds, self.pdo)

    def _points_from_woe(self, feature: str, woe) -> np.ndarray:
        """Points = offset/n - factor * (coef * woe + intercept/n), so the sum is the score."""
        factor, offset = self._factor_offset()
        n = len(self.features_)
        return offset / n - factor * (self.coef_[feature] * np.asarray(woe) + self.intercept_ / n)

    def _table(self) -> pd.DataFrame:
        rows = []
        for f in self.features_:
            bt = self.binnings_[f].binning_table.build()
            bt = bt.drop(index="Totals", errors="ignore")
            woe = pd.to_numeric(bt["WoE"], errors="coerce").fillna(0.0).to_numpy()
            rows.append(
                pd.DataFrame(
                    {
                        "feature": f,
                        "bin": bt["Bin"].map(_bin_label).to_numpy(),
                        "count": bt["Count"].astype(int).to_numpy(),
                        "event_rate": pd.to_numeric(bt["Event rate"]).to_numpy(),
                        "woe": woe,
                        "iv": pd.to_numeric(bt["IV"]).to_numpy(),
                        "coefficient": self.coef_[f],
                        "points": self._points_from_woe(f, woe),
                    }
                )
            )
        return pd.concat(rows, ignore_index=True)

    def woe(self, X: pd.DataFrame) -> pd.DataFrame:
        """WOE value of each kept feature per row."""
        return self._woe(X)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of default."""
        return self.estimator_.decision_function(self._woe(X).to_numpy())

    def contributions(self, X: pd.DataFrame, with_bias: bool = False) -> np.ndarray:
        """Log-odds contributions of the kept features per row: coefficient x (WOE - its training
        mean), the SHAP values of an additive model; with `with_bias` the mean log-odds as a last
        column, so that each row sums to its log-odds."""
        centred = (self._woe(X).to_numpy() - self.woe_mean_.to_numpy()) * self.coef_.to_numpy()
        if not with_bias:
            return centred
        bias = self.intercept_ + float(self.coef_ @ self.woe_mean_)
        return np.column_stack([centred, np.full(len(centred), bias)])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def points(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points of each kept feature per row; a row's points sum to its (unrounded) score."""
        woe = self._woe(X)
        return pd.DataFrame(
            {f: self._points_from_woe(f, woe[f].to_numpy()) for f in self.features_},
            index=X.index,
        )

    def credit_score(self, X: pd.DataFrame) -> np.ndarray:
        """Integer score: the rounded sum of points (equals `models.scaling.score_from_pd`)."""
        return np.rint(self.points(X).sum(axis=1).to_numpy()).astype(np.int64)

    def points_lost(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points below the best populated bin of each feature per row (0 = best bin)."""
        return (self.best_points_ - self.points(X)).clip(lower=0.0)


def scorecard_matrix(preparer: TablePreparer, X: pd.DataFrame) -> pd.DataFrame:
    """The scorecard's input from the champion's prepared rows: the preparer's input columns with
    the sentinel codes put back (from the `<col>_special` column, or, where the preparer keeps
    none, a missing value read as the one code), so the scorecard bins codes apart from missing
    values, as `TablePreparer(sentinels_to_nan=False)` gives them."""
    out = X[list(preparer.input_columns_)].copy()
    for column, codes in preparer.sentinels_.items():
        special = column + SPECIAL_SUFFIX
        if special in X.columns:
            out[column] = X[column].where(X[special].isna(), X[special])
        elif len(codes) == 1:
            out[column] = X[column].fillna(float(codes[0]))
    return out


def information_value(binning: OptimalBinning) -> float:
    """A fitted binning's information value, computed as optbinning's binning table builds it
    (bins with both defaults and non-defaults only), without building the table."""
    table = binning.binning_table
    events, others = np.asarray(table.n_event), np.asarray(table.n_nonevent)
    both = (events > 0) & (others > 0)
    p_event, p_other = (events / events.sum())[both], (others / others.sum())[both]
    iv = np.zeros(len(events))
    iv[both] = xlogy(p_event - p_other, p_event / p_other)
    return float(iv.sum())


def _bin_label(b) -> str:
    if not isinstance(b, str) and hasattr(b, "__iter__"):
        return "[" + ", ".join(str(v) for v in b) + "]"
    return str(b)


def cart_prebins(x, y, max_leaves: int, min_leaf: int) -> np.ndarray:
    """The split points sklearn's ``DecisionTreeClassifier(max_leaf_nodes=max_leaves,
    min_samples_leaf=min_leaf)`` finds on one feature (Gini, best first: optbinning's "cart"
    pre-binning), from prefix counts over one sort instead of a sort per node; the same splits
    (tested against sklearn). As there, values compare as float32, closer than 1e-7 as equal.
    """
    xs32 = np.asarray(x, dtype=np.float32)
    order = np.argsort(xs32, kind="stable")
    xs = xs32[order]
    events = np.concatenate([[0.0], np.cumsum(np.asarray(y, dtype=np.float64)[order])])
    n = xs.size
    if n == 0:
        return np.array([])
    cut_positions = np.flatnonzero(xs[1:] > xs[:-1] + FEATURE_THRESHOLD) + 1  # split positions

    def gini(pos, total):  # sklearn's order of operations, so that ties break the same way
        neg = total - pos
        return 1.0 - (neg * neg + pos * pos) / (total * total)

    def node(start, end):
        """(improvement, position) of the node's best split, or None when it is a leaf."""
        size = end - start
        w_pos = events[end] - events[start]
        impurity = gini(w_pos, float(size))
        if size < 2 or size < 2 * min_leaf or impurity <= np.finfo(float).eps:
            return None
        lo = np.searchsorted(cut_positions, start + min_leaf, side="left")
        hi = np.searchsorted(cut_positions, end - min_leaf, side="right")
        cand = cut_positions[lo:hi]
        if cand.size == 0:
            return None
        w_l = (cand - start).astype(np.float64)
        w_r = (end - cand).astype(np.float64)
        pos_l = events[cand] - events[start]
        pos_r = events[end] - events[cand]
        imp_l, imp_r = gini(pos_l, w_l), gini(pos_r, w_r)
        proxy = -w_r * imp_r - w_l * imp_l
        i = int(np.argmax(proxy))
        w_node = float(size)
        drop = impurity - (w_r[i] / w_node) * imp_r[i] - (w_l[i] / w_node) * imp_l[i]
        improvement = (w_node / n) * drop
        return improvement, int(cand[i])

    thresholds = []
    frontier = []
    counter = 0
    first = node(0, n)
    if first is not None:
        heapq.heappush(frontier, (-first[0], counter, 0, n, first[1]))
    splits_left = max_leaves - 1
    while frontier and splits_left > 0:
        _, _, start, end, p = heapq.heappop(frontier)
        splits_left -= 1
        thresholds.append(float(xs[p - 1]) / 2.0 + float(xs[p]) / 2.0)
        for a, b in ((start, p), (p, end)):
            child = node(a, b)
            if child is not None:
                counter += 1
                heapq.heappush(frontier, (-child[0], counter, a, b, child[1]))
    return np.unique(np.array(thresholds))
