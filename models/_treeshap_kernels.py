"""Compiled loops of `models.treeshap`: the per-leaf and per-group Shapley tables and the row
explanation."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def leaf_tables(value, n_of, feat_start, table_start, zero, weights):
    """T[leaf][pattern, k]: feature k's Shapley value of the leaf for a row agreeing with the
    features whose bits are set in the pattern (v (o_k - z_k) sum_S w(|S|, n) prod z, S over the
    agreeing features but k, the product over the other features but k)."""
    table = np.zeros(table_start[-1])
    poly = np.zeros(weights.shape[0] + 1)
    for leaf in range(value.size):
        n = n_of[leaf]
        z = zero[feat_start[leaf] : feat_start[leaf] + n]
        for pattern in range(1 << n):
            for k in range(n):
                poly[: n + 1] = 0.0
                poly[0] = 1.0
                m = 0  # agreeing features so far: poly[s] sums over their subsets S of size s
                for j in range(n):
                    if j == k:
                        continue
                    if (pattern >> j) & 1:
                        for s in range(m + 1, 0, -1):
                            poly[s] = poly[s] * z[j] + poly[s - 1]
                        poly[0] *= z[j]
                        m += 1
                    else:
                        for s in range(m + 1):
                            poly[s] *= z[j]
                total = 0.0
                for s in range(m + 1):
                    total += poly[s] * weights[n, s]
                agree = (pattern >> k) & 1
                table[table_start[leaf] + pattern * n + k] = value[leaf] * (agree - z[k]) * total
    return table


@njit(cache=True, nogil=True, inline="always")
def _decide(x, ns, ne, left, feature, threshold, kind, missing, default_left, cat, cat_start,
            cat_words):  # fmt: skip
    """LightGBM's `Tree::Decision` of the row ``x`` at nodes ``ns`` to ``ne``: ``left[i - ns]``
    is True where it goes left. One loop with no call per node (a helper returning each
    decision compiled about 18 times slower)."""
    for i in range(ns, ne):
        v = x[feature[i]]
        if kind[i]:  # categorical: NaN, negative or past int go right
            goes = False
            if v > -1.0 and v < 2147483648.0:
                code = np.int64(v)
                c = cat[i]
                word = code >> 5
                if word < cat_start[c + 1] - cat_start[c]:
                    bits = np.int64(cat_words[cat_start[c] + word])
                    goes = ((bits >> (code & 31)) & 1) == 1
        else:
            mt = missing[i]  # missing type 0: missing as 0; 1: zero missing; 2: NaN missing
            if mt != 2 and np.isnan(v):
                v = 0.0
            if (mt == 1 and v >= -1e-35 and v <= 1e-35) or (mt == 2 and np.isnan(v)):
                goes = default_left[i]
            else:
                goes = v <= threshold[i]
        left[i - ns] = goes


@njit(cache=True, nogil=True)
def group_tables(
    g_p, g_inner_start, g_feat_start, g_table_start, g_leaf_start, g_leaf, n_of, feat_start,
    table_start, table, at_group, agree_bit, split_mask, split_left,
):  # fmt: skip
    """G[group][index, u]: a group's Shapley values of its features ``u`` for every index
    (`_group_row`'s), the sum over its leaves of their tables at the leaf's pattern. Leaf
    feature k agrees where its bit of the path agreement is set (``agree_bit``, -1: a feature
    first split on inside the group) and the row turns as the leaf's path does at the group's
    splits on it (``split_mask`` of the group's splits, ``split_left`` their left turns);
    ``at_group`` is its column in the group's table."""
    out = np.zeros(g_table_start[-1])
    for g in range(g_p.size):
        p = g_p[g]
        bits = p + g_inner_start[g + 1] - g_inner_start[g]
        width = g_feat_start[g + 1] - g_feat_start[g]
        for index in range(1 << bits):
            agree, turns = index & ((1 << p) - 1), index >> p
            row = g_table_start[g] + index * width
            for q in range(g_leaf_start[g], g_leaf_start[g + 1]):
                leaf = g_leaf[q]
                n, fs = n_of[leaf], feat_start[leaf]
                pattern = 0
                for k in range(n):
                    c = agree_bit[fs + k]
                    ok = (c < 0 or (agree >> c) & 1 == 1) and (
                        (turns ^ split_left[fs + k]) & split_mask[fs + k]
                    ) == 0
                    pattern |= np.int64(ok) << k
                src = table_start[leaf] + pattern * n
                for k in range(n):
                    out[row + at_group[fs + k]] += table[src + k]
    return out


@njit(cache=True, nogil=True, inline="always")
def _group_row(g, left, g_p, g_path_start, g_path_node, g_path_left, g_path_pos, g_inner_start,
               g_inner_node, g_feat_start, g_table_start):  # fmt: skip
    """Where the row's entries of group ``g`` start in its table: the index holds, low bits
    first, whether the row agrees with each feature of the path above the group (follows its
    every split there) and the turns it takes at the group's splits (1: left)."""
    p = g_p[g]
    agree = (1 << p) - 1
    for q in range(g_path_start[g], g_path_start[g + 1]):
        away = np.int64(left[g_path_node[q]] != g_path_left[q])
        agree &= ~(away << g_path_pos[q])
    turns, i0 = 0, g_inner_start[g]
    for j in range(g_inner_start[g + 1] - i0):
        turns |= np.int64(left[g_inner_node[i0 + j]]) << j
    return g_table_start[g] + (agree | (turns << p)) * (g_feat_start[g + 1] - g_feat_start[g])


@njit(cache=True, nogil=True, inline="always")
def _leaf_value(t, left, node_start, child_left, child_right, leaf_start, leaf_value):
    """The value of the leaf the row reaches in tree ``t`` (``left``: its turns there)."""
    ns, node = node_start[t], 0
    if node_start[t + 1] == ns:  # a tree of one leaf
        return leaf_value[leaf_start[t]]
    while True:
        child = child_left[ns + node] if left[node] else child_right[ns + node]
        if child < 0:
            return leaf_value[leaf_start[t] + ~child]
        node = child


@njit(cache=True, nogil=True)
def explain_rows(
    X, phi, raw, block, node_start, feature, threshold, kind, missing, default_left, cat,
    cat_start, cat_words, child_left, child_right, leaf_start, leaf_value, group_start, g_p,
    g_path_start, g_path_node, g_path_left, g_path_pos, g_inner_start, g_inner_node,
    g_feat_start, g_feat, g_table_start, g_table,
):  # fmt: skip
    """Add every tree's contributions to ``phi`` and leaf values to ``raw``, tree by tree in
    model order for each block of rows (raw scores sum as LightGBM's predict sums them)."""
    n_rows = X.shape[0]
    left = np.zeros(max(1, np.max(node_start[1:] - node_start[:-1])), dtype=np.bool_)
    for r0 in range(0, n_rows, block):
        r1 = min(n_rows, r0 + block)
        for t in range(node_start.size - 1):
            ns, ne = node_start[t], node_start[t + 1]
            for r in range(r0, r1):
                _decide(X[r], ns, ne, left, feature, threshold, kind, missing, default_left, cat,
                        cat_start, cat_words)  # fmt: skip
                raw[r] += _leaf_value(t, left, node_start, child_left, child_right, leaf_start,
                                      leaf_value)  # fmt: skip
                for g in range(group_start[t], group_start[t + 1]):
                    base = _group_row(g, left, g_p, g_path_start, g_path_node, g_path_left,
                                      g_path_pos, g_inner_start, g_inner_node, g_feat_start,
                                      g_table_start)  # fmt: skip
                    fs = g_feat_start[g]
                    for k in range(g_feat_start[g + 1] - fs):
                        phi[r, g_feat[fs + k]] += g_table[base + k]


@njit(cache=True, nogil=True)
def explain_row(
    x, phi, node_start, feature, threshold, kind, missing, default_left, cat, cat_start,
    cat_words, child_left, child_right, leaf_start, leaf_value, group_start, g_p, g_path_start,
    g_path_node, g_path_left, g_path_pos, g_inner_start, g_inner_node, g_feat_start, g_feat,
    g_table_start, g_table,
):  # fmt: skip
    """`explain_rows` of one row ``x``, returning its raw score, in two passes: where every
    group's entries start first, then the reads in one flat loop, whose misses in memory (one
    per group: a row reuses no table) then overlap instead of waiting on each other. The same
    sums in the same order."""
    left = np.zeros(max(1, np.max(node_start[1:] - node_start[:-1])), dtype=np.bool_)
    base = np.empty(g_p.size, dtype=np.int64)
    raw = 0.0
    for t in range(node_start.size - 1):
        _decide(x, node_start[t], node_start[t + 1], left, feature, threshold, kind, missing,
                default_left, cat, cat_start, cat_words)  # fmt: skip
        raw += _leaf_value(t, left, node_start, child_left, child_right, leaf_start, leaf_value)
        for g in range(group_start[t], group_start[t + 1]):
            base[g] = _group_row(g, left, g_p, g_path_start, g_path_node, g_path_left,
                                 g_path_pos, g_inner_start, g_inner_node, g_feat_start,
                                 g_table_start)  # fmt: skip
    for g in range(g_p.size):
        fs, b = g_feat_start[g], base[g]
        for k in range(g_feat_start[g + 1] - fs):
            phi[g_feat[fs + k]] += g_table[b + k]
    return raw
