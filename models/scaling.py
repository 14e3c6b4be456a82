"""Score points scaling: PD <-> score with base score at base odds and points to double the odds.

score = offset + factor * ln(odds_good), factor = pdo / ln 2, offset = base_score - factor *
ln(base_odds), where odds_good = (1 - pd) / pd. With the defaults a PD of 1/51 (odds 50:1) scores
600 and every doubling of the odds adds 20 points.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

BASE_SCORE = 600.0
BASE_ODDS = 50.0
PDO = 20.0
PD_CLIP = 1e-6


def factor_offset(
    base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS, pdo: float = PDO
) -> tuple[float, float]:
    """Return (factor, offset) so that score = offset + factor * ln(odds_good)."""
    if pdo <= 0 or base_odds <= 0:
        raise ValueError(
            f"pdo and base_odds must be positive, got pdo={pdo}, base_odds={base_odds}"
        )
    factor = pdo / math.log(2.0)
    return factor, base_score - factor * math.log(base_odds)


def score_from_pd(
    pd: ArrayLike, base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS, pdo: float = PDO
) -> np.ndarray | int:
    """Integer score for each PD (rounded half to even); PD is clipped to [1e-6, 1 - 1e-6].

    A scalar PD gives a Python int, an array gives an int64 array. NaN PDs are an error.
    """
    p = np.asarray(pd, dtype=float)
    if np.isnan(p).any():
        raise ValueError("score_from_pd got NaN PDs; score only rows with a predicted PD")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("score_from_pd needs PDs in [0, 1]; pass probabilities, not log-odds")
    factor, offset = factor_offset(base_score, base_odds, pdo)
    p = np.clip(p, PD_CLIP, 1.0 - PD_CLIP)
    score = np.rint(offset + factor * np.log((1.0 - p) / p)).astype(np.int64)
    return int(score) if score.ndim == 0 else score


def pd_from_score(
    score: ArrayLike, base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS, pdo: float = PDO
) -> np.ndarray | float:
    """PD implied by a score: the inverse of `score_from_pd` before rounding."""
    s = np.asarray(score, dtype=float)
    factor, offset = factor_offset(base_score, base_odds, pdo)
    odds_good = np.exp((s - offset) / factor)
    p = 1.0 / (1.0 + odds_good)
    return float(p) if p.ndim == 0 else p
