"""Exact TreeSHAP of a LightGBM model, tabulated per leaf and compiled: the values of
`Booster.predict(pred_contrib=True)` (to rounding) and its raw scores (bit for bit), faster on
large batches.

Path-dependent TreeSHAP gives a leaf's value to the n distinct features of its path; what a row
changes is only which of those features it agrees with (every split on the feature sends it
towards the leaf). So each leaf's Shapley values for all 2^n agreement patterns are computed once
per model, and a row costs, per leaf, its pattern and n look-ups (LightGBM's recursion costs
O(depth^2) per leaf). Splits are decided as LightGBM decides them: missing types None (missing
as 0), Zero and NaN with the default direction, categorical bitsets (missing and negative codes
go right). `TreeShap.of` returns None for what it does not handle (several trees per iteration,
linear trees, averaged outputs, paths of more than `MAX_PATH_FEATURES` distinct features) and
`lightgbm_matrix` None for inputs LightGBM itself would refuse; callers then use pred_contrib.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_PATH_FEATURES = 16  # 2^16 x 16 table entries (8 MB) for one such leaf
MAX_TABLE_ENTRIES = 1 << 25  # 256 MB of tables for the whole model
BLOCK_ROWS = 128  # rows explained tree by tree together: their features and values stay in cache
CHUNK_ROWS = 2048  # rows per task of the thread pool
CATEGORICAL, DEFAULT_LEFT = 1, 2


@dataclass(frozen=True)
class _Tree:
    """One tree of the model text: node arrays as LightGBM stores them."""

    leaf_value: np.ndarray
    leaf_count: np.ndarray
    internal_count: np.ndarray
    split_feature: np.ndarray
    threshold: np.ndarray
    decision_type: np.ndarray
    left_child: np.ndarray
    right_child: np.ndarray
    cat_boundaries: np.ndarray
    cat_threshold: np.ndarray


def _array(fields: dict[str, str], key: str, dtype) -> np.ndarray:
    text = fields.get(key, "")
    return np.array(text.split(), dtype=dtype) if text else np.zeros(0, dtype=dtype)


def _parse_model(text: str) -> tuple[dict[str, str], list[_Tree]] | None:
    """Header fields and trees of a LightGBM model text; None for trees it cannot tabulate."""
    header: dict[str, str] = {}
    trees: list[_Tree] = []
    sections = text.split("\nTree=")
    for line in sections[0].splitlines():
        key, _, value = line.partition("=")
        header[key.strip()] = value.strip()
    for section in sections[1:]:
        body = section.split("end of trees", 1)[0]
        fields = {}
        for line in body.splitlines()[1:]:
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip()
        if fields.get("is_linear", "0") != "0":
            return None
        trees.append(
            _Tree(
                leaf_value=_array(fields, "leaf_value", np.float64),
                leaf_count=_array(fields, "leaf_count", np.float64),
                internal_count=_array(fields, "internal_count", np.float64),
                split_feature=_array(fields, "split_feature", np.int64),
                threshold=_array(fields, "threshold", np.float64),
                decision_type=_array(fields, "decision_type", np.int64),
                left_child=_array(fields, "left_child", np.int64),
                right_child=_array(fields, "right_child", np.int64),
                cat_boundaries=_array(fields, "cat_boundaries", np.int64),
                cat_threshold=_array(fields, "cat_threshold", np.uint32),
            )
        )
    return header, trees


def _expected_value(tree: _Tree) -> float:
    """LightGBM's `Tree::ExpectedValue`, summed in its order."""
    if tree.leaf_value.size == 1:
        return float(tree.leaf_value[0])
    total, value = float(tree.internal_count[0]), 0.0
    for count, leaf in zip(tree.leaf_count, tree.leaf_value, strict=True):
        value += (count / total) * leaf
    return value


def _leaf_paths(tree: _Tree):
    """Per leaf: path nodes (node, goes left) and, per distinct feature in order of first split,
    the product of the path's cover fractions on it (LightGBM's zero fractions)."""
    paths = []

    def walk(node: int, path: list[tuple[int, bool]], zero: dict[int, float]) -> None:
        if node < 0:
            paths.append((~node, list(path), dict(zero)))
            return
        feature, count = int(tree.split_feature[node]), tree.internal_count[node]
        for child, left in ((tree.left_child[node], True), (tree.right_child[node], False)):
            child_count = tree.internal_count[child] if child >= 0 else tree.leaf_count[~child]
            fraction = child_count / count
            inner = dict(zero)
            inner[feature] = inner.get(feature, 1.0) * fraction
            walk(int(child), [*path, (node, left)], inner)

    if tree.leaf_value.size > 1:
        walk(0, [], {})
    else:
        paths.append((0, [], {}))
    return sorted(paths, key=lambda p: p[0])


@dataclass
class TreeShap:
    """Flat arrays of a model's trees and per-leaf Shapley tables, for `_explain_rows`."""

    n_features: int
    bias: float
    arrays: tuple

    @classmethod
    def of(cls, booster, num_iteration: int | None = None) -> TreeShap | None:
        """The tables of ``booster`` (its first ``num_iteration`` iterations, as `predict`
        counts them), or None where this implementation does not handle the model."""
        import lightgbm as lgb

        if not isinstance(booster, lgb.Booster):
            return None
        parsed = _parse_model(booster.model_to_string(num_iteration=num_iteration))
        if parsed is None:
            return None
        header, trees = parsed
        if header.get("num_tree_per_iteration", "1") != "1" or "average_output" in header:
            return None
        return cls._build(int(header["max_feature_idx"]) + 1, trees)

    @classmethod
    def _build(cls, n_features: int, trees: list[_Tree]) -> TreeShap | None:
        from models import _treeshap_kernels as kernels

        node_start, leaf_start = [0], [0]
        nodes = {k: [] for k in ("feature", "threshold", "kind", "missing", "left", "cat")}
        cat_words, cat_start = [], [0]
        leaves = {k: [] for k in ("value", "n", "path_start", "feat_start", "table_start")}
        path_node, path_left, path_pos, leaf_feature, zeros = [], [], [], [], []
        follow_mask, follow_left = [], []
        table_size, bias = 0, 0.0
        for tree in trees:
            bias += _expected_value(tree)
            base = node_start[-1]
            for i in range(tree.split_feature.size):
                dt = int(tree.decision_type[i])
                nodes["feature"].append(int(tree.split_feature[i]))
                nodes["threshold"].append(float(tree.threshold[i]))
                nodes["kind"].append(dt & CATEGORICAL)
                nodes["missing"].append((dt >> 2) & 3)
                nodes["left"].append(bool(dt & DEFAULT_LEFT))
                if dt & CATEGORICAL:
                    idx = int(tree.threshold[i])
                    words = tree.cat_threshold[
                        tree.cat_boundaries[idx] : tree.cat_boundaries[idx + 1]
                    ]
                    nodes["cat"].append(len(cat_start) - 1)
                    cat_words.extend(int(w) for w in words)
                    cat_start.append(len(cat_words))
                else:
                    nodes["cat"].append(-1)
            node_start.append(base + tree.split_feature.size)
            for leaf, path, zero in _leaf_paths(tree):
                features = list(zero)
                n = len(features)
                if n > MAX_PATH_FEATURES:
                    return None
                pos = {f: k for k, f in enumerate(features)}
                leaves["value"].append(float(tree.leaf_value[leaf]))
                leaves["n"].append(n)
                leaves["path_start"].append(len(path_node))
                leaves["feat_start"].append(len(leaf_feature))
                leaves["table_start"].append(table_size)
                masks = [0] * n  # per feature: its path's nodes (bits), the left turns among them
                lefts = [0] * n
                for node, left in path:
                    k = pos[int(tree.split_feature[node])]
                    path_node.append(base + node)
                    path_left.append(left)
                    path_pos.append(k)
                    if node < kernels.WORD_BITS:
                        masks[k] |= 1 << node
                        lefts[k] |= int(left) << node
                follow_mask.extend(masks)
                follow_left.extend(lefts)
                leaf_feature.extend(features)
                zeros.extend(zero[f] for f in features)
                table_size += (1 << n) * n
                if table_size > MAX_TABLE_ENTRIES:
                    return None
            leaf_start.append(len(leaves["value"]))
        leaves["path_start"].append(len(path_node))
        leaves["feat_start"].append(len(leaf_feature))
        leaves["table_start"].append(table_size)
        value = np.asarray(leaves["value"], dtype=np.float64)
        n_of = np.asarray(leaves["n"], dtype=np.int64)
        feat_start = np.asarray(leaves["feat_start"], dtype=np.int64)
        table_start = np.asarray(leaves["table_start"], dtype=np.int64)
        zero_arr = np.asarray(zeros, dtype=np.float64)
        weights = _shapley_weights(int(n_of.max(initial=0)))
        table = kernels.leaf_tables(value, n_of, feat_start, table_start, zero_arr, weights)
        arrays = (
            np.asarray(node_start, dtype=np.int64),
            np.asarray(nodes["feature"], dtype=np.int64),
            np.asarray(nodes["threshold"], dtype=np.float64),
            np.asarray(nodes["kind"], dtype=np.int8),
            np.asarray(nodes["missing"], dtype=np.int8),
            np.asarray(nodes["left"], dtype=np.bool_),
            np.asarray(nodes["cat"], dtype=np.int64),
            np.asarray(cat_start, dtype=np.int64),
            np.asarray(cat_words, dtype=np.uint32),
            np.asarray(leaf_start, dtype=np.int64),
            value,
            n_of,
            np.asarray(leaves["path_start"], dtype=np.int64),
            np.asarray(path_node, dtype=np.int64),
            np.asarray(path_left, dtype=np.bool_),
            np.asarray(path_pos, dtype=np.int64),
            np.asarray(follow_mask, dtype=np.uint64),
            np.asarray(follow_left, dtype=np.uint64),
            feat_start,
            np.asarray(leaf_feature, dtype=np.int64),
            table_start,
            table,
        )
        return cls(n_features, bias, arrays)

    def explain(self, X: np.ndarray, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(contributions: rows x (features + bias), raw scores) of a float64 matrix laid out as
        the model's features; rows are split among ``threads`` (default: the usable cores)."""
        from models import _treeshap_kernels as kernels

        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} feature columns, got {X.shape}")
        n = len(X)
        phi = np.zeros((n, self.n_features + 1))
        raw = np.zeros(n)
        threads = max(1, min(threads or _cores(), -(-n // CHUNK_ROWS)))
        chunks = range(0, n, CHUNK_ROWS)  # more chunks than threads: a busy core holds no one up

        def run(lo: int) -> None:
            hi = min(n, lo + CHUNK_ROWS)
            if hi - lo == 1:  # one customer online: the one-row kernel, the same numbers
                raw[lo] = kernels.explain_row(X[lo], phi[lo], *self.arrays)
            else:
                kernels.explain_rows(X[lo:hi], phi[lo:hi], raw[lo:hi], BLOCK_ROWS, *self.arrays)

        if threads == 1:
            for lo in chunks:
                run(lo)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(run, chunks))
        phi[:, -1] = self.bias
        return phi, raw


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _shapley_weights(n_max: int) -> np.ndarray:
    """w[n, s] = s! (n - s - 1)! / n!: the weight of a coalition of s among n players."""
    w = np.zeros((n_max + 1, n_max + 1))
    for n in range(1, n_max + 1):
        for s in range(n):
            w[n, s] = 1.0 / (n * math.comb(n - 1, s))
    return w


def lightgbm_matrix(booster, X) -> np.ndarray | None:
    """``X`` as the float64 matrix LightGBM's `predict` builds from it (categories as the codes
    of the training categories, missing ones NaN), or None for an input it would refuse."""
    if not isinstance(X, pd.DataFrame):
        array = np.asarray(X)
        return array.astype(np.float64) if array.dtype.kind in "fiub" else None
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    known = booster.pandas_categorical or []
    if len(categorical) != len(known):
        return None
    data = X.copy(deep=False)
    for column, categories in zip(categorical, known, strict=True):
        values = data[column]
        if list(values.cat.categories) != list(categories):
            values = values.cat.set_categories(categories)
        codes = values.cat.codes.to_numpy()
        data[column] = np.where(codes < 0, np.nan, codes)
    if not all(
        pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t) for t in data.dtypes
    ):
        return None
    # LightGBM passes float32 only when every column fits it exactly: float64 holds the same values
    return data.to_numpy(dtype=np.float64, na_value=np.nan)
