"""Reason codes: which features raised a customer's risk, in plain words, for a whole batch at once.

LightGBM: TreeSHAP contributions from the booster's own `pred_contrib` (log-odds; what
`shap.TreeExplainer` computes for LightGBM). Scorecard: points lost against each feature's best
bin. Either way the top-k risk-raising features per row come from one argpartition over the
contribution matrix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

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


def _gather_values(X: pd.DataFrame, names: list[str], idx: np.ndarray) -> np.ndarray:
    """X[row, names[idx[row, r]]] for every (row, r), column by column (no per-row Python)."""
    out = np.full(idx.shape, None, dtype=object)
    for j in np.unique(idx):
        mask = idx == j
        rows = np.nonzero(mask)[0]
        col = X[names[j]]
        values = col.astype(object).where(col.notna(), None).to_numpy()
        out[mask] = values[rows]
    return out


class _TopReasons:
    """Shared output shapes over a (rows x features) matrix of risk contributions."""

    def __init__(self, feature_names: list[str], reason_text: Callable[[str], str] | None, k: int):
        self.feature_names = list(feature_names)
        self.reason_text = reason_text
        self.k = k
        self.texts_ = _texts(self.feature_names, reason_text)

    def contributions(self, X) -> np.ndarray:
        raise NotImplementedError

    def _top(self, X: pd.DataFrame, k: int | None):
        idx, vals = top_k(self.contributions(X), self.k if k is None else k)
        return idx, vals, vals > 0

    def top_reasons_frame(self, X: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
        """Long frame: row (position), rank (1 = strongest), feature, text, value, contribution."""
        idx, vals, keep = self._top(X, k)
        values = _gather_values(X, self.feature_names, idx)
        rows, ranks = np.nonzero(keep)
        names = np.asarray(self.feature_names, dtype=object)
        return pd.DataFrame(
            {
                "row": rows,
                "rank": ranks + 1,
                "feature": names[idx[keep]],
                "text": self.texts_[idx[keep]],
                "value": values[keep],
                "contribution": vals[keep],
            }
        )

    def top_reasons(self, X: pd.DataFrame, k: int | None = None) -> list[list[dict]]:
        """Per row, up to k risk-raising reasons {feature, text, value, contribution}, desc."""
        idx, vals, keep = self._top(X, k)
        values = _gather_values(X, self.feature_names, idx)
        names = self.feature_names
        texts = self.texts_
        counts = keep.sum(axis=1)
        return [
            [
                {
                    "feature": names[idx[i, r]],
                    "text": texts[idx[i, r]],
                    "value": _json_value(values[i, r]),
                    "contribution": float(vals[i, r]),
                }
                for r in range(counts[i])
            ]
            for i in range(len(idx))
        ]

    def reasons_json(self, X: pd.DataFrame, k: int | None = None) -> list[str]:
        """`top_reasons` as one JSON string per row (the scorer's `reasons` column)."""
        return [json.dumps(r, default=str) for r in self.top_reasons(X, k)]


class ReasonExplainer(_TopReasons):
    """Reasons from a LightGBM booster: TreeSHAP log-odds contributions, risk-raising only.

    Built once per model; `reason_text(feature)` gives the plain-language text (catalog), and the
    feature name stands in where it has none.
    """

    def __init__(
        self,
        booster,
        feature_names: list[str],
        reason_text: Callable[[str], str] | None = None,
        k: int = K,
        num_iteration: int | None = None,
    ):
        super().__init__(feature_names, reason_text, k)
        self.booster = booster
        self.num_iteration = num_iteration

    def contributions(self, X, with_bias: bool = False) -> np.ndarray:
        """TreeSHAP contributions (rows x features, log-odds), bias last when `with_bias`."""
        data = X[self.feature_names] if isinstance(X, pd.DataFrame) else X
        contrib = self.booster.predict(data, pred_contrib=True, num_iteration=self.num_iteration)
        return contrib if with_bias else contrib[:, :-1]


class ScorecardReasons(_TopReasons):
    """Reasons from a `WOEScorecard`: points lost against each feature's best bin."""

    def __init__(self, scorecard, reason_text: Callable[[str], str] | None = None, k: int = K):
        super().__init__(scorecard.features_, reason_text, k)
        self.scorecard = scorecard

    def contributions(self, X) -> np.ndarray:
        """Points lost per row and kept feature (>= 0; larger = more risk)."""
        return self.scorecard.points_lost(X)[self.feature_names].to_numpy()
