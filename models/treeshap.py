"""Exact TreeSHAP of a LightGBM model, tabulated and compiled: the values of
`Booster.predict(pred_contrib=True)` (to rounding) and its raw scores (bit for bit), faster on
one row and on large batches.

Path-dependent TreeSHAP gives a leaf's value to the n distinct features of its path; what a row
changes is only which of those features it agrees with (every split on the feature sends it
towards the leaf). So each leaf's Shapley values for all 2^n agreement patterns are computed once
per model (LightGBM's recursion costs O(depth^2) per leaf per row). Leaves are then summed into
groups: a small subtree's leaves depend on the row only through its agreement with the features
of the path above the subtree and its turns at the subtree's splits, so one table indexed by
those bits holds the subtree's summed values, and a row costs, per group, its index and one
contiguous read of the group's features (rather than a scattered read per leaf). Splits are
decided as LightGBM decides them: missing types None (missing as 0), Zero and NaN with the
default direction, categorical bitsets (missing and negative codes go right). `TreeShap.of`
returns None for what it does not handle (several trees per iteration, linear trees, averaged
outputs, paths of more than `MAX_PATH_FEATURES` distinct features) and `lightgbm_matrix` None
for inputs LightGBM itself would refuse; callers then use pred_contrib.
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
GROUP_SPLITS = 8  # splits a subtree may hold to be tabulated as one group
GROUP_GROWTH = 8  # a group's table at most this many times its leaves' tables
GROUP_BITS = 14  # index bits of a group's table: 2^14 x 14 entries (1.8 MB) at most
BLOCK_ROWS = 128  # rows explained tree by tree together: their features and values stay in cache
CHUNK_ROWS = 2048  # rows per task of the thread pool
CATEGORICAL, DEFAULT_LEFT = 1, 2
ROW_ARRAYS = ("group_start", "p", "path_start", "path_node", "path_left", "path_pos",
              "inner_start", "inner_node", "feat_start", "feature", "table_start")  # fmt: skip


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


def _subtree(tree: _Tree, node: int) -> tuple[list[int], list[int]]:
    """The split nodes (in preorder, left first) and the leaves under ``node``."""
    splits, leaves, stack = [], [], [node]
    while stack:
        u = stack.pop()
        if u < 0:
            leaves.append(~u)
        else:
            splits.append(u)
            stack += [int(tree.right_child[u]), int(tree.left_child[u])]
    return splits, leaves


def _groups(tree: _Tree, leaf_sizes: list[int], max_splits: int) -> list[tuple]:
    """A tree cut into groups, left to right: (path to the group's root as (node, goes left),
    the path's distinct features in order of first split, its split nodes, its leaves). The
    group is the highest subtree of at most ``max_splits`` splits whose table index (the
    path's distinct features and the splits) has at most `GROUP_BITS` bits and whose table is
    at most `GROUP_GROWTH` times its leaves' tables (``leaf_sizes``); a leaf on its own
    otherwise."""
    out = []

    def visit(node: int, path: list[tuple[int, bool]], above: dict[int, None]) -> None:
        if node < 0:
            out.append((path, list(above), [], [~node]))
            return
        splits, leaves = _subtree(tree, node)
        bits = len(above) + len(splits)
        if len(splits) <= max_splits and bits <= GROUP_BITS:
            width = len(above.keys() | {int(tree.split_feature[u]) for u in splits})
            if (1 << bits) * width <= GROUP_GROWTH * sum(leaf_sizes[leaf] for leaf in leaves):
                out.append((path, list(above), splits, leaves))
                return
        inner = {**above, int(tree.split_feature[node]): None}
        visit(int(tree.left_child[node]), [*path, (node, True)], inner)
        visit(int(tree.right_child[node]), [*path, (node, False)], inner)

    if tree.leaf_value.size > 1:
        visit(0, [], {})
    else:
        out.append(([], [], [], [0]))
    return out


def _group_layout(trees, tree_paths, leaf_start, feat_start, max_splits: int) -> dict | None:
    """Flat arrays of every tree's `_groups`, for `kernels.group_tables` and the row kernels:
    per group its path features' agreement (path nodes, turns, feature positions), its splits,
    its features (the path's, then those first split on inside it) and its table's start; per
    leaf feature its column in the group's table, its bit of the path agreement (-1: none) and
    the group's splits on it (mask, left turns). None past `MAX_TABLE_ENTRIES`."""
    g = {k: [] for k in ("p", "path_node", "path_left", "path_pos", "inner_node", "feature",
                         "leaf")}  # fmt: skip
    starts = {k: [0] for k in ("group", "path", "inner", "feat", "table", "leaf")}
    size = int(feat_start[-1])
    at_group = np.zeros(size, dtype=np.int64)
    agree_bit = np.zeros(size, dtype=np.int64)
    split_mask = np.zeros(size, dtype=np.int64)
    split_left = np.zeros(size, dtype=np.int64)
    for t, (tree, paths) in enumerate(zip(trees, tree_paths, strict=True)):
        sizes = [(1 << len(zero)) * len(zero) for _, _, zero in paths]
        for path, above, splits, group_leaves in _groups(tree, sizes, max_splits):
            inside = [int(tree.split_feature[u]) for u in splits]
            features = list(dict.fromkeys(above + inside))
            column = {f: k for k, f in enumerate(features)}
            bit = {u: j for j, u in enumerate(splits)}
            g["p"].append(len(above))
            for u, goes_left in path:
                g["path_node"].append(u)
                g["path_left"].append(goes_left)
                g["path_pos"].append(column[int(tree.split_feature[u])])
            g["inner_node"].extend(splits)
            g["feature"].extend(features)
            for leaf in group_leaves:
                at = leaf_start[t] + leaf
                g["leaf"].append(at)
                _, leaf_path, zero = paths[leaf]
                for k, f in enumerate(zero):
                    i = feat_start[at] + k
                    at_group[i], agree_bit[i] = column[f], k if k < len(above) else -1
                    for u, goes_left in leaf_path[len(path) :]:
                        if int(tree.split_feature[u]) == f:
                            split_mask[i] |= 1 << bit[u]
                            split_left[i] |= int(goes_left) << bit[u]
            starts["path"].append(len(g["path_node"]))
            starts["inner"].append(len(g["inner_node"]))
            starts["feat"].append(len(g["feature"]))
            starts["leaf"].append(len(g["leaf"]))
            bits = len(above) + len(splits)
            starts["table"].append(starts["table"][-1] + (1 << bits) * len(features))
            if starts["table"][-1] > MAX_TABLE_ENTRIES:
                return None
        starts["group"].append(len(g["p"]))
    out = {k: np.asarray(v, dtype=np.bool_ if k == "path_left" else np.int64)
           for k, v in g.items()}  # fmt: skip
    out.update({f"{k}_start": np.asarray(v, dtype=np.int64) for k, v in starts.items()})
    out.update(at_group=at_group, agree_bit=agree_bit, split_mask=split_mask,
               split_left=split_left)  # fmt: skip
    return out


@dataclass
class TreeShap:
    """Flat arrays of a model's trees and per-group Shapley tables, for the kernels'
    `explain_rows` and `explain_row`."""

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
        child_left, child_right = [], []
        cat_words, cat_start = [], [0]
        leaves = {k: [] for k in ("value", "n", "feat_start", "table_start")}
        leaf_feature, zeros, tree_paths = [], [], []
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
            child_left.extend(int(c) for c in tree.left_child)
            child_right.extend(int(c) for c in tree.right_child)
            node_start.append(base + tree.split_feature.size)
            paths = _leaf_paths(tree)
            for _, _, zero in paths:
                features = list(zero)
                n = len(features)
                if n > MAX_PATH_FEATURES:
                    return None
                leaves["n"].append(n)
                leaves["feat_start"].append(len(leaf_feature))
                leaves["table_start"].append(table_size)
                leaf_feature.extend(features)
                zeros.extend(zero[f] for f in features)
                table_size += (1 << n) * n
                if table_size > MAX_TABLE_ENTRIES:
                    return None
            leaves["value"].extend(float(tree.leaf_value[leaf]) for leaf, _, _ in paths)
            tree_paths.append(paths)
            leaf_start.append(len(leaves["value"]))
        leaves["feat_start"].append(len(leaf_feature))
        leaves["table_start"].append(table_size)
        value = np.asarray(leaves["value"], dtype=np.float64)
        n_of = np.asarray(leaves["n"], dtype=np.int64)
        feat_start = np.asarray(leaves["feat_start"], dtype=np.int64)
        table_start = np.asarray(leaves["table_start"], dtype=np.int64)
        weights = _shapley_weights(int(n_of.max(initial=0)))
        zero = np.asarray(zeros, dtype=np.float64)
        table = kernels.leaf_tables(value, n_of, feat_start, table_start, zero, weights)
        for splits in (GROUP_SPLITS, GROUP_SPLITS // 2, 0):  # 0: single leaves, their tables
            layout = _group_layout(trees, tree_paths, leaf_start, feat_start, splits)
            if layout is not None:
                break
        group_table = kernels.group_tables(
            layout["p"], layout["inner_start"], layout["feat_start"], layout["table_start"],
            layout["leaf_start"], layout["leaf"], n_of, feat_start, table_start, table,
            layout["at_group"], layout["agree_bit"], layout["split_mask"], layout["split_left"],
        )  # fmt: skip
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
            np.asarray(child_left, dtype=np.int64),
            np.asarray(child_right, dtype=np.int64),
            np.asarray(leaf_start, dtype=np.int64),
            value,
            *(layout[k] for k in ROW_ARRAYS),
            group_table,
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
