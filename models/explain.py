"""Reason codes: which features raised a customer's risk, in plain words, for a whole batch at once.

LightGBM: TreeSHAP contributions (log-odds), the values of the booster's own `pred_contrib`
(what `shap.TreeExplainer` computes for LightGBM), from `models.treeshap` where it handles the
model (faster on large batches), else from `pred_contrib` itself. Scorecard: points lost against
each feature's best bin. A champion that is the scorecard or a blend (`BlendReasons`): the
weighted sum of TreeSHAP and the scorecard's centred log-odds contributions. Either way the top-k
risk-raising features per row come from one argpartition over the contribution matrix.

A reason names something true about the customer. With the catalog's `ReasonRules` (feature
snapshots), a missing value is placed before the top-k: one the customer's segment never has
(statement ratios of a retail customer) adds its contribution to the segment's, the effect of
being in that segment; features of a record the customer lacks as a whole (no financial
statement, a repayment window not filled) pool their contributions into one reason with the
record's text (feature: the record's name, value null); one that means no such event (days since
the last lawsuit, none ever) is never a reason. Any other missing value, and every missing value
of a flat table (no rules), may be a reason, said to be missing ("<text>: missing", value null):
missing data is often a true driver of risk (an income not reported). Pooling keeps each row's
total; left out are only events that never happened and, where the segment is no feature of the
model, features the segment never has.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from features.catalog import ReasonRules
from models.prepare import SPECIAL_SUFFIX

K = 5


def plain_name(name: str) -> str:
    """A column name as words for reason codes of flat tables: snake_case and CamelCase split,
    capitalised words after the first lowered (acronyms kept), a special-code column said so."""
    special = name.endswith(SPECIAL_SUFFIX)
    base = name[: -len(SPECIAL_SUFFIX)] if special else name
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])", " ", base.replace("_", " "))
    words = spaced.split() or [name]
    words[1:] = [w if w.isupper() else w.lower() for w in words[1:]]
    text = " ".join(words)
    return f"{text} (special code)" if special else text


def _texts(names: list[str], reason_text: Callable[[str], str] | None) -> np.ndarray:
    """Reason text per feature; the column name as words where the callable has none."""
    out = []
    for name in names:
        try:
            text = reason_text(name) if reason_text is not None else None
        except KeyError:
            text = None
        out.append(text or plain_name(name))
    return np.asarray(out, dtype=object)


def top_k(contrib: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's k largest entries, largest first (ties by column)."""
    n, p = contrib.shape
    k = min(k, p)
    if k == 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0))
    idx = (
        np.argpartition(-contrib, k - 1, axis=1)[:, :k] if k < p else np.tile(np.arange(p), (n, 1))
    )
    vals = np.take_along_axis(contrib, idx, axis=1)
    order = np.lexsort((idx, -vals), axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)


def _json_value(v):
    """Plain Python value for JSON: numpy scalars unwrapped, NaN as None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def _gather_values(X: pd.DataFrame, names: list[str], idx: np.ndarray):
    """X[row, names[idx[row, r]]] for every (row, r), column by column (no per-row Python), and
    where it is missing; a pooled reason (index past the features) has no value."""
    out = np.full(idx.shape, None, dtype=object)
    missing = np.ones(idx.shape, dtype=bool)
    for j in np.unique(idx):
        if j >= len(names):
            continue
        mask = idx == j
        rows = np.nonzero(mask)[0]
        col = X[names[j]]
        present = col.notna().to_numpy()
        out[mask] = col.astype(object).where(present, None).to_numpy()[rows]
        missing[mask] = ~present[rows]
    return out, missing


_ENCODER = json.JSONEncoder(default=str)  # what json.dumps(..., default=str) writes with
CONTRIBUTION = ', "contribution": '  # between a reason's value and its contribution in JSON


def _json_text(v) -> str:
    """One value as `json.dumps(_json_value(v), default=str)` writes it (a finite float: its
    repr, as json writes it)."""
    if type(v) is float and math.isfinite(v):
        return float.__repr__(v)
    return _ENCODER.encode(_json_value(v))


def _json_texts(values: np.ndarray) -> list[str]:
    """Each value as `json.dumps(_json_value(v), default=str)` writes it; finite floats by
    their repr (as json does) without a call per value."""
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if finite.all():
            return list(map(float.__repr__, values.tolist()))
    memo: dict = {}
    out = []
    for v in values.tolist() if values.dtype.kind != "O" else values:
        try:
            text = memo[v]
        except (KeyError, TypeError):
            text = _json_text(v)
            with contextlib.suppress(TypeError):  # unhashable: not remembered
                memo[v] = text
        out.append(text)
    return out


def _gather_json(X: pd.DataFrame, names: list[str], idx: np.ndarray):
    """`_gather_values` as JSON texts ("null" where missing), and where values are missing."""
    out = np.full(idx.shape, "null", dtype=object)
    missing = np.ones(idx.shape, dtype=bool)
    for j in np.unique(idx):
        if j >= len(names):
            continue
        mask = idx == j
        rows = np.nonzero(mask)[0]
        col = X[names[j]]
        present = col.notna().to_numpy()[rows]
        texts = np.full(len(rows), "null", dtype=object)
        picked = col.iloc[rows[present]].to_numpy()
        if len(picked):
            texts[present] = _json_texts(picked)
        out[mask] = texts
        missing[mask] = ~present
    return out, missing


class _MissingValues:
    """`ReasonRules` compiled for one model's features: contributions (rows x features) in,
    contributions of the reasons out (features, then one pooled column per source)."""

    def __init__(self, feature_names: list[str], rules: ReasonRules):
        self.rules = rules
        self.feature_names = list(feature_names)
        col = {name: j for j, name in enumerate(feature_names)}
        self.segment_col = col.get(rules.segment)
        self.restricted = [(col[f], s) for f, s in rules.segments.items() if f in col]
        members: dict[str, list[int]] = {}
        for f, source in rules.sources.items():
            if f in col:
                members.setdefault(source, []).append(col[f])
        self.members = members
        self.sources = list(rules.texts)
        self.pooled_col = {s: len(col) + i for i, s in enumerate(self.sources)}
        self.silent = [col[f] for f in rules.silent if f in col]

    def apply(self, contrib: np.ndarray, X: pd.DataFrame) -> np.ndarray:
        """Reason contributions: missing values placed by the rules (see the module docstring)."""
        free = X[self.feature_names].isna().to_numpy(copy=True)  # missing cells not yet placed
        lacking = {}
        if self.restricted and self.rules.segment in X.columns:
            segment = X[self.rules.segment]
            known = segment.notna().to_numpy()
            lacking = {s: known & ~segment.isin(s).to_numpy() for _, s in self.restricted}
        return self.place(contrib, free, lacking)

    def place(
        self, contrib: np.ndarray, free: np.ndarray, lacking: dict[tuple[str, ...], np.ndarray]
    ) -> np.ndarray:
        """`apply` given the missing cells (``free``, changed in place) and, per restricted
        feature's segments, the rows of a known segment outside them (``lacking``)."""
        n, p = contrib.shape
        out = np.zeros((n, p + len(self.sources)))
        out[:, :p] = contrib
        for j, segments in self.restricted if lacking else ():
            # features the segment never has: their contributions go to the segment's
            cells = free[:, j] & lacking[segments]
            if self.segment_col is not None:
                out[cells, self.segment_col] += contrib[cells, j]
            out[cells, j] = 0.0
            free[cells, j] = False
        self._sources(out, contrib, free)
        for j in self.silent:
            out[free[:, j], j] = 0.0
        return out

    def place_row(self, contrib: list[float], missing: list[bool], segment: str | None) -> list:
        """`place` of one row as plain floats (its missing cells, its segment: None where
        missing): the same sums in the same order, without arrays of one row."""
        out = [*contrib, *([0.0] * len(self.sources))]
        free = list(missing)
        at = self.segment_col
        for j, segments in self.restricted if at is not None and segment is not None else ():
            if free[j] and segment not in segments:
                out[at] += contrib[j]
                out[j], free[j] = 0.0, False
        lacks = {s: all(free[c] for c in cols) for s, cols in self.members.items()}
        for source, cols in self.members.items():
            target, rows = self.pooled_col[source], lacks[source]
            wider = self.rules.within.get(source)
            while wider is not None:
                if lacks.get(wider):
                    target, rows = self.pooled_col[wider], True
                wider = self.rules.within.get(wider)
            for j in cols if rows else ():
                if free[j]:
                    out[target] += contrib[j]
                    out[j], free[j] = 0.0, False
        for j in self.silent:
            if free[j]:
                out[j] = 0.0
        return out

    def _sources(self, out, contrib, free) -> None:
        """A record the row lacks (all its features missing): one pooled reason, the widest."""
        lacks = {s: free[:, cols].all(axis=1) for s, cols in self.members.items()}
        for source, cols in self.members.items():
            target = np.full(len(out), self.pooled_col[source])
            rows = lacks[source].copy()
            wider = self.rules.within.get(source)
            while wider is not None:
                if wider in lacks:
                    target[lacks[wider]] = self.pooled_col[wider]
                    rows |= lacks[wider]
                wider = self.rules.within.get(wider)
            for j in cols:
                cells = np.nonzero(free[:, j] & rows)[0]
                out[cells, target[cells]] += contrib[cells, j]
                out[cells, j] = 0.0
                free[cells, j] = False


class _TopReasons:
    """Shared output shapes over a (rows x features) matrix of risk contributions."""

    def __init__(
        self,
        feature_names: list[str],
        reason_text: Callable[[str], str] | None,
        k: int,
        rules: ReasonRules | None = None,
    ):
        self.feature_names = list(feature_names)
        self.reason_text = reason_text
        self.k = k
        self.rules = rules
        self.missing_ = _MissingValues(self.feature_names, rules) if rules is not None else None
        pooled = self.missing_.sources if self.missing_ is not None else []
        self.reasons_ = np.asarray(self.feature_names + pooled, dtype=object)
        feature_texts = _texts(self.feature_names, reason_text)
        pooled_texts = [rules.texts[s] for s in pooled]
        self.texts_ = np.asarray([*feature_texts, *pooled_texts], dtype=object)
        self.missing_texts_ = np.asarray(
            [f"{t}: missing" for t in feature_texts] + pooled_texts, dtype=object
        )

    def contributions(self, X) -> np.ndarray:
        raise NotImplementedError

    def reason_contributions(self, X: pd.DataFrame, contributions=None) -> np.ndarray:
        """Contributions per row and reason: the features, then the pooled records (rules).
        ``contributions`` (rows x features, as `contributions` gives them) saves computing them."""
        contrib = self.contributions(X) if contributions is None else contributions
        if self.missing_ is None:
            return contrib
        return self.missing_.apply(contrib, X)

    def _top(self, X: pd.DataFrame, k: int | None, contributions=None):
        reason_contrib = self.reason_contributions(X, contributions)
        idx, vals = top_k(reason_contrib, self.k if k is None else k)
        values, missing = _gather_values(X, self.feature_names, idx)
        texts = np.where(missing, self.missing_texts_[idx], self.texts_[idx])
        return idx, vals, vals > 0, values, texts

    def top_reasons_frame(
        self, X: pd.DataFrame, k: int | None = None, contributions=None
    ) -> pd.DataFrame:
        """Long frame: row (position), rank (1 = strongest), feature, text, value, contribution."""
        idx, vals, keep, values, texts = self._top(X, k, contributions)
        rows, ranks = np.nonzero(keep)
        return pd.DataFrame(
            {
                "row": rows,
                "rank": ranks + 1,
                "feature": self.reasons_[idx[keep]],
                "text": texts[keep],
                "value": values[keep],
                "contribution": vals[keep],
            }
        )

    def top_reasons(
        self, X: pd.DataFrame, k: int | None = None, contributions=None
    ) -> list[list[dict]]:
        """Per row, up to k risk-raising reasons {feature, text, value, contribution}, desc."""
        idx, vals, keep, values, texts = self._top(X, k, contributions)
        names = self.reasons_
        counts = keep.sum(axis=1)
        return [
            [
                {
                    "feature": names[idx[i, r]],
                    "text": texts[i, r],
                    "value": _json_value(values[i, r]),
                    "contribution": float(vals[i, r]),
                }
                for r in range(counts[i])
            ]
            for i in range(len(idx))
        ]

    def reasons_json(self, X: pd.DataFrame, k: int | None = None, contributions=None) -> list[str]:
        """`top_reasons` as one JSON string per row (the scorer's `reasons` column): the same
        text as `json.dumps(..., default=str)` of each row's list, written column by column."""
        reason_contrib = self.reason_contributions(X, contributions)
        idx, vals = top_k(reason_contrib, self.k if k is None else k)
        if not np.isfinite(vals).all():  # json's NaN / Infinity: the plain way
            return [_ENCODER.encode(r) for r in self.top_reasons(X, k, contributions)]
        values, missing = _gather_json(X, self.feature_names, idx)
        heads = self._json_heads()
        head = np.where(missing, heads[1][idx], heads[0][idx])
        numbers = np.array(list(map(float.__repr__, vals.ravel().tolist())), dtype=object)
        cells = head + values + CONTRIBUTION + numbers.reshape(vals.shape) + "}"
        keep = vals > 0  # sorted largest first: the kept reasons lead each row
        out = np.full(len(idx), "[", dtype=object)
        for r in range(idx.shape[1]):
            out = np.where(keep[:, r], out + ((", " if r else "") + cells[:, r]), out)
        return (out + "]").tolist()

    def row_reasons_json(
        self, contrib: np.ndarray, values: list, missing: list[bool], k: int | None = None
    ) -> str | None:
        """`reasons_json` of one prepared row given as plain values: its contributions (1 x
        features), its values in feature order (numbers, category text) and where they are
        missing (as the frame's isna); None where the contributions are not finite or the last
        kept reason ties with the next (which one `top_k` keeps is the frame's to say)."""
        rules = self.missing_
        out = contrib[0].tolist()
        if rules is not None:
            at = rules.segment_col
            out = rules.place_row(out, missing, None if at is None or missing[at] else values[at])
        k = min(self.k if k is None else k, len(out))
        order = sorted(range(len(out)), key=lambda j: (-out[j], j))
        tied = k < len(out) and out[order[k - 1]] > 0 and out[order[k - 1]] == out[order[k]]
        if tied or not all(map(math.isfinite, out)):
            return None  # a kept reason tied with the next, or not finite: the frame's way
        idx = order[:k]
        vals = [out[j] for j in idx]
        p, heads = len(self.feature_names), self._json_heads()
        cells = []
        for j, value in zip(idx, vals, strict=True):
            if value <= 0:  # sorted largest first: the kept reasons lead
                break
            gone = j >= p or missing[j]
            text = "null" if gone else _json_text(values[j])
            cells.append(heads[gone][j] + text + CONTRIBUTION + float.__repr__(value) + "}")
        return "[" + ", ".join(cells) + "]"

    def _json_heads(self) -> tuple[np.ndarray, np.ndarray]:
        """Per reason, the JSON before its value: with its text, and with its missing text."""
        heads = getattr(self, "json_heads_", None)
        if heads is None:

            def head(names, texts):
                return np.array(
                    [f'{{"feature": {_ENCODER.encode(_json_value(n))}, "text": '
                     f'{_ENCODER.encode(t)}, "value": ' for n, t in zip(names, texts, strict=True)],
                    dtype=object,
                )  # fmt: skip

            heads = head(self.reasons_, self.texts_), head(self.reasons_, self.missing_texts_)
            self.json_heads_ = heads
        return heads


class ReasonExplainer(_TopReasons):
    """Reasons from a LightGBM booster: TreeSHAP log-odds contributions, risk-raising only.

    Built once per model; `reason_text(feature)` gives the plain-language text (catalog), and the
    feature name stands in where it has none; `rules` (catalog) place the missing values. The
    contributions come from `models.treeshap` (the same values as `pred_contrib`, faster) where
    it handles the model and the input, else from the booster's `pred_contrib`; `method` says
    which (``fast=False``: always `pred_contrib`).
    """

    def __init__(
        self,
        booster,
        feature_names: list[str],
        reason_text: Callable[[str], str] | None = None,
        k: int = K,
        num_iteration: int | None = None,
        rules: ReasonRules | None = None,
        fast: bool = True,
    ):
        super().__init__(feature_names, reason_text, k, rules)
        self.booster = booster
        self.num_iteration = num_iteration
        self.fast = fast
        self._tables = None  # built on first use: models.treeshap.TreeShap, or False

    @property
    def tables(self):
        """The model's `models.treeshap.TreeShap` tables, None where it cannot have them."""
        if self._tables is None:
            self._tables = False
            if self.fast:
                try:
                    from models.treeshap import TreeShap

                    self._tables = TreeShap.of(self.booster, self.num_iteration) or False
                except ImportError:  # numba missing where the model is served
                    pass
        return self._tables or None

    @property
    def method(self) -> str:
        """How contributions are computed for data frames: "tables" or "pred_contrib"."""
        return "tables" if self.tables is not None else "pred_contrib"

    def explain(self, X) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP contributions (rows x (features + bias), log-odds) and raw scores (log-odds,
        as `predict(raw_score=True)` gives them), in one pass where the tables serve."""
        return self._explain(X, raw=True)

    def contributions(self, X, with_bias: bool = False) -> np.ndarray:
        """TreeSHAP contributions (rows x features, log-odds), bias last when `with_bias`."""
        contrib = self._explain(X, raw=False)[0]
        return contrib if with_bias else contrib[:, :-1]

    def _explain(self, X, raw: bool) -> tuple[np.ndarray, np.ndarray | None]:
        data = X[self.feature_names] if isinstance(X, pd.DataFrame) else X
        if len(data) == 0:
            return np.zeros((0, len(self.feature_names) + 1)), np.zeros(0)
        if self.tables is not None:
            from models.treeshap import lightgbm_matrix

            matrix = lightgbm_matrix(self.booster, data)
            if matrix is not None:
                return self.tables.explain(matrix)
        n = self.num_iteration
        contrib = self.booster.predict(data, pred_contrib=True, num_iteration=n)
        return contrib, self.booster.predict(data, raw_score=True, num_iteration=n) if raw else None


class BlendReasons(_TopReasons):
    """Reasons from a logit blend of models (or one model with weight 1): the weighted sum of
    their log-odds contributions, which are the blend's SHAP values (SHAP values add up as the
    models do). ``parts`` holds (weight, contributions) pairs, contributions(X) giving rows x
    (features + bias) in the order of ``feature_names``."""

    def __init__(
        self,
        parts,
        feature_names: list[str],
        reason_text: Callable[[str], str] | None = None,
        k: int = K,
        rules: ReasonRules | None = None,
    ):
        super().__init__(feature_names, reason_text, k, rules)
        self.parts = list(parts)

    def contributions(self, X, with_bias: bool = False) -> np.ndarray:
        """The parts' weighted sum (rows x features, log-odds), bias last when `with_bias`."""
        total = sum(weight * part(X) for weight, part in self.parts)
        return total if with_bias else total[:, :-1]


class ScorecardReasons(_TopReasons):
    """Reasons from a `WOEScorecard`: points lost against each feature's best bin."""

    def __init__(
        self,
        scorecard,
        reason_text: Callable[[str], str] | None = None,
        k: int = K,
        rules: ReasonRules | None = None,
    ):
        super().__init__(scorecard.features_, reason_text, k, rules)
        self.scorecard = scorecard

    def contributions(self, X) -> np.ndarray:
        """Points lost per row and kept feature (>= 0; larger = more risk)."""
        return self.scorecard.points_lost(X)[self.feature_names].to_numpy()
