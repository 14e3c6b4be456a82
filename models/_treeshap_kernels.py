"""Compiled loops of `models.treeshap`: the per-leaf Shapley tables and the row explanation."""

from __future__ import annotations

import numpy as np
from numba import njit

WORD_BITS = 64  # trees of at most this many nodes find a leaf's pattern from one decision word


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


@njit(cache=True, nogil=True, inline="always")
def _pattern(leaf, n, left, ns, path_start, path_node, path_left, path_pos):
    """The bits of the leaf's ``n`` path features whose every split the row follows (``left``:
    where it goes at each node of the tree, from the tree's first node ``ns``)."""
    pattern = (1 << n) - 1
    for q in range(path_start[leaf], path_start[leaf + 1]):
        away = np.int64(left[path_node[q] - ns] != path_left[q])
        pattern &= ~(away << path_pos[q])
    return pattern


@njit(cache=True, nogil=True)
def explain_rows(
    X, phi, raw, block, node_start, feature, threshold, kind, missing, default_left, cat,
    cat_start, cat_words, leaf_start, leaf_value, n_of, path_start, path_node, path_left,
    path_pos, follow_mask, follow_left, feat_start, leaf_feature, table_start, table,
):  # fmt: skip
    """Add every tree's contributions to ``phi`` and leaf values to ``raw``, tree by tree in
    model order for each block of rows (raw scores sum as LightGBM's predict sums them).
    ``follow_mask`` and ``follow_left`` are `explain_row`'s."""
    n_rows = X.shape[0]
    left = np.zeros(max(1, np.max(node_start[1:] - node_start[:-1])), dtype=np.bool_)
    for r0 in range(0, n_rows, block):
        r1 = min(n_rows, r0 + block)
        for t in range(node_start.size - 1):
            ns, ne = node_start[t], node_start[t + 1]
            for r in range(r0, r1):
                _decide(X[r], ns, ne, left, feature, threshold, kind, missing, default_left, cat,
                        cat_start, cat_words)  # fmt: skip
                for leaf in range(leaf_start[t], leaf_start[t + 1]):
                    n = n_of[leaf]
                    pattern = _pattern(leaf, n, left, ns, path_start, path_node, path_left,
                                       path_pos)  # fmt: skip
                    if pattern == (1 << n) - 1:
                        raw[r] += leaf_value[leaf]
                    base = table_start[leaf] + pattern * n
                    fs = feat_start[leaf]
                    for k in range(n):
                        phi[r, leaf_feature[fs + k]] += table[base + k]


@njit(cache=True, nogil=True)
def explain_row(
    x, phi, node_start, feature, threshold, kind, missing, default_left, cat, cat_start,
    cat_words, leaf_start, leaf_value, n_of, path_start, path_node, path_left, path_pos,
    follow_mask, follow_left, feat_start, leaf_feature, table_start, table,
):  # fmt: skip
    """`explain_rows` of one row ``x``, returning its raw score, in two passes: every leaf's
    table entries first (``index``, laid out as ``leaf_feature``), then the reads in one flat
    loop, whose misses in memory (one per leaf: a row reuses no table) then overlap instead of
    waiting on each other. The same sums in the same order. A tree of at most `WORD_BITS`
    nodes takes its decisions as one word and finds each leaf feature's bit at once
    (``follow_mask``: the feature's nodes on the leaf's path, ``follow_left``: its left turns
    among them); a larger one goes split by split (`_pattern`)."""
    left = np.zeros(max(1, np.max(node_start[1:] - node_start[:-1])), dtype=np.bool_)
    index = np.empty(leaf_feature.size, dtype=np.int64)
    raw = 0.0
    for t in range(node_start.size - 1):
        ns, ne = node_start[t], node_start[t + 1]
        _decide(x, ns, ne, left, feature, threshold, kind, missing, default_left, cat, cat_start,
                cat_words)  # fmt: skip
        narrow = ne - ns <= WORD_BITS
        word = np.uint64(0)
        if narrow:
            for i in range(ne - ns):
                word |= np.uint64(left[i]) << np.uint64(i)
        for leaf in range(leaf_start[t], leaf_start[t + 1]):
            n, fs = n_of[leaf], feat_start[leaf]
            if narrow:  # one loop per branch, in line: a helper for both compiled slower
                pattern = 0
                for k in range(n):
                    away = (word ^ follow_left[fs + k]) & follow_mask[fs + k]
                    pattern |= np.int64(away == 0) << k
            else:
                pattern = _pattern(leaf, n, left, ns, path_start, path_node, path_left, path_pos)
            if pattern == (1 << n) - 1:
                raw += leaf_value[leaf]
            base = table_start[leaf] + pattern * n
            for k in range(n):
                index[fs + k] = base + k
    for j in range(index.size):
        phi[leaf_feature[j]] += table[index[j]]
    return raw
