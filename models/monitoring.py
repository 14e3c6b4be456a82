"""Monitoring statistics for a PD model in use, as pure functions on arrays and frames.

Stability: per-feature PSI (CSI) against the training reference; rating migration between two
runs measured by the matrix-weighted bandwidth and the z-tests of migration stability.
Discrimination over time: the variance of the AUC estimator and the test of the current against
the initial AUC. Before outcomes mature: the AUC and default rate that calibrated PDs imply.
The ECB tests follow the ECB's "Instructions for reporting the validation results of internal
models" (IRB Pillar I models for credit risk, February 2019).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from models.validation import (
    _both_classes,
    _scores,
    psi,
    psi_categorical,
    psi_verdict,
)

STABILITY_ALPHA = 0.05  # a migration z-test or AUC test below this is significant


class Bandwidth(NamedTuple):
    """Upper (moves to worse grades, above the diagonal) and lower (to better) MWB in [0, 1]."""

    upper: float
    lower: float


class AUCDropTest(NamedTuple):
    """The ECB test of the current AUC against the initial one (one-sided: a drop)."""

    auc_initial: float
    auc_current: float
    s_current: float
    statistic: float
    p_value: float


def _square_counts(counts: ArrayLike) -> np.ndarray:
    n = np.asarray(counts, dtype=float)
    if n.ndim != 2 or n.shape[0] != n.shape[1] or n.shape[0] < 2:
        raise ValueError(
            f"need a square migration count matrix of at least 2 grades, got {n.shape}"
        )
    if (n < 0).any() or not np.isfinite(n).all():
        raise ValueError("migration counts must be finite and non-negative")
    return n


def matrix_weighted_bandwidth(counts: ArrayLike) -> Bandwidth:
    """Upper and lower matrix-weighted bandwidth of a migration count matrix (ECB instructions,
    section 2.5.5.1 "customer migrations"); rows are grades before, columns after, best first.

    MWB_upper = sum_{i<j} |i - j| N_ij / sum_{i<j} max(|i - K|, |i - 1|) N_ij, the lower one
    likewise below the diagonal (N_ij = N_i p_ij); a side with no move has bandwidth 0.
    """
    n = _square_counts(counts)
    k = n.shape[0]
    i, j = np.indices(n.shape)
    reach = np.maximum(i, k - 1 - i)  # max(|i - K|, |i - 1|) with grades 1..K
    out = []
    for side in (j > i, j < i):
        weight = float(np.sum(n * reach * side))
        out.append(float(np.sum(n * np.abs(i - j) * side)) / weight if weight > 0 else 0.0)
    return Bandwidth(*out)


def migration_z_tests(
    counts: ArrayLike, grades: list[str] | None = None, alpha: float = STABILITY_ALPHA
) -> pd.DataFrame:
    """z-tests of migration-matrix stability (ECB instructions, section 2.5.5.2): each off-diagonal
    cell's rate p_ij against its neighbour one step nearer the diagonal, p_near.

    H0: p_ij <= p_near (rates fall away from the diagonal). With N_i customers in grade i before,
    z = (p_near - p_ij) / sqrt((p_ij (1 - p_ij) + p_near (1 - p_near) + 2 p_ij p_near) / N_i)
    and p_value = Phi(z); a p_value below ``alpha`` is a significant violation. Rows: before,
    after, n_before, rate, rate_near, z, p_value, violation (cells of empty rows or with zero
    variance are left out).
    """
    n = _square_counts(counts)
    k = n.shape[0]
    names = np.array(list(grades) if grades is not None else [str(g) for g in range(1, k + 1)])
    if names.size != k:
        raise ValueError(f"{names.size} grade names for a {k} x {k} matrix")
    total = n.sum(axis=1, keepdims=True)
    p = np.divide(n, total, out=np.zeros_like(n), where=total > 0)
    i, j = np.indices(n.shape)
    right = np.pad(p[:, 1:], ((0, 0), (0, 1)))  # p[i, j + 1]
    left = np.pad(p[:, :-1], ((0, 0), (1, 0)))  # p[i, j - 1]
    near = np.where(j < i, right, left)
    variance = (p * (1 - p) + near * (1 - near) + 2 * p * near) / np.maximum(total, 1)
    keep = (i != j) & (total > 0) & (variance > 0)
    z = (near[keep] - p[keep]) / np.sqrt(variance[keep])
    out = pd.DataFrame(
        {
            "before": names[i[keep]],
            "after": names[j[keep]],
            "n_before": np.broadcast_to(total, n.shape)[keep].astype(np.int64),
            "rate": p[keep],
            "rate_near": near[keep],
            "z": z,
            "p_value": stats.norm.cdf(z),
        }
    )
    out["violation"] = out["p_value"] < alpha
    return out


def _placements(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """DeLong's placement values: for each default the share of non-defaults it outranks, for
    each non-default the share of defaults that outrank it (ties count one half); and the AUC."""
    _, group = np.unique(p, return_inverse=True)
    pos, neg = np.bincount(group, y), np.bincount(group, 1.0 - y)
    n_pos, n_neg = pos.sum(), neg.sum()
    neg_below = np.cumsum(neg) - neg
    pos_above = pos.sum() - np.cumsum(pos)
    v_pos = (neg_below + 0.5 * neg)[group[y == 1]] / n_neg
    v_neg = (pos_above + 0.5 * pos)[group[y == 0]] / n_pos
    return v_pos, v_neg, float(v_pos.mean())


def auc_variance(y: ArrayLike, p: ArrayLike) -> float:
    """Variance of the AUC estimator from DeLong's placement values, as the ECB instructions
    (section 2.5.3.1) estimate it: with N_D defaults and N_ND non-defaults,
    s^2 = sum_D (V_D - AUC)^2 / (N_D (N_D - 1)) + sum_ND (V_ND - AUC)^2 / (N_ND (N_ND - 1)).
    Needs at least two of each class."""
    yy, pp = _scores(y, p, probability=False)
    _both_classes(yy)
    n_pos, n_neg = int(yy.sum()), int(yy.size - yy.sum())
    if min(n_pos, n_neg) < 2:
        raise ValueError("the AUC variance needs at least two defaults and two non-defaults")
    v_pos, v_neg, area = _placements(yy, pp)
    return float(
        np.sum((v_pos - area) ** 2) / (n_pos * (n_pos - 1))
        + np.sum((v_neg - area) ** 2) / (n_neg * (n_neg - 1))
    )


def auc_drop_test(auc_initial: float, y: ArrayLike, p: ArrayLike) -> AUCDropTest:
    """ECB test of the current AUC against the AUC at initial validation (section 2.5.3.1):
    S = (AUC_init - AUC_curr) / s_curr, s_curr the standard deviation of the current AUC
    estimator (`auc_variance`); p_value = 1 - Phi(S), small when the AUC has dropped."""
    if not 0.0 <= auc_initial <= 1.0:
        raise ValueError(f"the initial AUC must lie in [0, 1], got {auc_initial}")
    yy, pp = _scores(y, p, probability=False)
    s = np.sqrt(auc_variance(yy, pp))
    current = _placements(yy, pp)[2]
    if s == 0:  # a perfect or fully tied ranking: no spread to test against
        statistic = 0.0 if auc_initial == current else np.copysign(np.inf, auc_initial - current)
    else:
        statistic = (auc_initial - current) / s
    return AUCDropTest(
        float(auc_initial), current, float(s), float(statistic), float(stats.norm.sf(statistic))
    )


def expected_auc(pd_: ArrayLike, score: ArrayLike | None = None) -> float:
    """The AUC calibrated PDs imply before any outcome is known: over pairs i != j,
    sum p_i (1 - p_j) [s_i > s_j] / sum p_i (1 - p_j), ties counting one half (the ratio of the
    expected ranked pairs to the expected pairs). ``score`` ranks (default: the PD itself)."""
    p = np.asarray(pd_, dtype=float).ravel()
    s = p if score is None else np.asarray(score, dtype=float).ravel()
    if p.size < 2 or s.shape != p.shape:
        raise ValueError("expected AUC needs at least two PDs (and a score for each, if given)")
    if not np.isfinite(p).all() or ((p < 0) | (p > 1)).any() or not np.isfinite(s).all():
        raise ValueError("expected AUC needs finite PDs in [0, 1] and finite scores")
    _, group = np.unique(s, return_inverse=True)
    pos, neg = np.bincount(group, p), np.bincount(group, 1.0 - p)
    own = np.bincount(group, p * (1.0 - p))  # the pairs i = i, left out
    neg_below = np.cumsum(neg) - neg
    ranked = np.sum(pos * neg_below) + 0.5 * np.sum(pos * neg - own)
    pairs = pos.sum() * neg.sum() - own.sum()
    if pairs <= 0:
        raise ValueError("expected AUC is undefined when every PD is 0 or every PD is 1")
    return float(ranked / pairs)


def expected_default_rate(pd_: ArrayLike) -> float:
    """The default rate calibrated PDs imply: their mean."""
    p = np.asarray(pd_, dtype=float).ravel()
    if p.size == 0:
        raise ValueError("no PDs given")
    return float(p.mean())


def is_numeric(values: pd.Series) -> bool:
    """A feature binned by quantiles (numbers, not booleans or categories)."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def feature_psi(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], bins: int = 10
) -> pd.DataFrame:
    """Per-feature PSI (CSI) of ``current`` against ``reference``, highest first: feature, kind
    (numeric: quantile bins of the reference, missing its own bin; else categories), psi,
    verdict. Columns absent from either frame, or empty in the reference, are left out."""
    rows = []
    for column in columns:
        if column not in reference or column not in current:
            continue
        ref, cur = reference[column], current[column]
        if is_numeric(ref) and is_numeric(cur):
            ref_num, cur_num = ref.to_numpy(dtype=float), cur.to_numpy(dtype=float)
            if np.isnan(ref_num).all():
                continue
            value, kind = psi(ref_num, cur_num, bins), "numeric"
        else:
            value, kind = psi_categorical(ref.astype(object), cur.astype(object)), "categorical"
        rows.append((column, kind, value, psi_verdict(value)))
    out = pd.DataFrame(rows, columns=["feature", "kind", "psi", "verdict"])
    return out.sort_values("psi", ascending=False, kind="stable", ignore_index=True)
