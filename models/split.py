"""Train / validation / calibration / test splits as positional index arrays.

With a time column the split is out of time: train on the earliest as-of dates, validate
(early stopping) and calibrate on the next ones, test on the latest, so every reported figure is
on data later than anything the model learned from. Without one, a seeded stratified split.
Rows with a missing label (horizon not matured) are left out of every part. `check_classes` and
`check_parts` refuse labels too few to split, and parts a model cannot fit or be tested on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from models.prepare import TrainingInputError

SEED = 42
MIN_CLASS_ROWS = 10  # of each class: the 10 % validation and calibration parts get one each
PARTS = {"train": "training", "valid": "validation", "calib": "calibration", "test": "test"}


@dataclass(frozen=True)
class Split:
    """Positional indices (into the frame given) of each part; `dates` maps part -> as-of dates."""

    train: np.ndarray
    valid: np.ndarray
    calib: np.ndarray
    test: np.ndarray
    dates: dict[str, list] | None = None

    def sizes(self) -> dict[str, int]:
        return {p: len(getattr(self, p)) for p in ("train", "valid", "calib", "test")}


def _labelled(y) -> np.ndarray:
    return np.flatnonzero(~pd.isna(np.asarray(y, dtype=float)))


def _halve(idx: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a window into validation and calibration halves, stratified when both classes occur."""
    if len(idx) < 2:
        return idx, idx[:0]
    labels = y[idx]
    strat = (
        labels if np.unique(labels).size > 1 and np.bincount(labels.astype(int)).min() > 1 else None
    )
    a, b = train_test_split(idx, test_size=0.5, random_state=seed, stratify=strat)
    return np.sort(a), np.sort(b)


def _take_latest(counts: np.ndarray, share: float, total: int) -> int:
    """How many of the latest dates are needed to hold `share` of all rows (at least one)."""
    cumulative = np.cumsum(counts[::-1])
    return int(min(np.searchsorted(cumulative, share * total) + 1, len(counts)))


def out_of_time_split(
    time,
    y,
    test_share: float = 0.2,
    valid_share: float = 0.2,
    gap_dates: int = 0,
    seed: int = SEED,
) -> Split:
    """Earliest dates train, later dates validate+calibrate (halved, stratified), latest test.

    Each share is reached with whole dates (at least one date per part); `gap_dates` drops that
    many dates between the parts (an embargo when labels of neighbouring dates overlap).
    """
    t = pd.to_datetime(pd.Series(np.asarray(time))).to_numpy()
    yv = np.asarray(y, dtype=float)
    keep = _labelled(yv)
    t_keep = t[keep]
    dates, counts = np.unique(t_keep, return_counts=True)
    if len(dates) < 3 + 2 * gap_dates:
        raise TrainingInputError(
            f"an out-of-time split needs at least {3 + 2 * gap_dates} labelled as-of dates, "
            f"got {len(dates)}",
            hint="add dates (snapshot as-of dates) or use a stratified split (no time column)",
        )
    total = counts.sum()
    n_test = min(_take_latest(counts, test_share, total), len(dates) - 2 - 2 * gap_dates)
    head = len(dates) - n_test - gap_dates
    n_valid = min(_take_latest(counts[:head], valid_share, total), head - 1 - gap_dates)
    test_dates = dates[-n_test:]
    valid_dates = dates[head - n_valid : head]
    train_dates = dates[: head - n_valid - gap_dates]
    valid, calib = _halve(keep[np.isin(t_keep, valid_dates)], yv, seed)
    as_dates = {
        "train": list(pd.to_datetime(train_dates)),
        "valid": list(pd.to_datetime(valid_dates)),
        "test": list(pd.to_datetime(test_dates)),
    }
    train = keep[np.isin(t_keep, train_dates)]
    test = keep[np.isin(t_keep, test_dates)]
    return Split(train, valid, calib, test, as_dates)


def stratified_split(
    y, test_share: float = 0.2, valid_share: float = 0.2, seed: int = SEED
) -> Split:
    """Seeded stratified split for tables without a time column; valid and calib share a window."""
    yv = np.asarray(y, dtype=float)
    keep = _labelled(yv)
    rest, test = train_test_split(keep, test_size=test_share, random_state=seed, stratify=yv[keep])
    train, window = train_test_split(
        rest, test_size=valid_share / (1 - test_share), random_state=seed, stratify=yv[rest]
    )
    valid, calib = _halve(np.sort(window), yv, seed)
    return Split(np.sort(train), valid, calib, np.sort(test))


def check_classes(y: np.ndarray) -> None:
    """Refuse labels (0/1, none missing) with fewer than `MIN_CLASS_ROWS` defaults or non-defaults:
    too few to give each part of the split both classes."""
    defaults = int(np.sum(y))
    performing = len(y) - defaults
    if min(defaults, performing) < MIN_CLASS_ROWS:
        raise TrainingInputError(
            f"too few defaults or non-defaults to split and validate: {len(y):,} labelled rows, "
            f"{defaults:,} defaults (target 1) and {performing:,} non-defaults (target 0); at "
            f"least {MIN_CLASS_ROWS} of each are needed",
            hint="add labelled rows (both outcomes), or check the target column",
        )


def check_parts(split: Split, y: np.ndarray, parts=("train", "calib", "test")) -> None:
    """Refuse a split whose training, calibration or test part lacks defaults or non-defaults:
    a model cannot be fitted, calibrated or tested there (an out-of-time window with no
    default, say)."""
    for part in parts:
        labels = y[getattr(split, part)]
        defaults = int(labels.sum())
        if defaults == 0 or defaults == len(labels):
            dates = (split.dates or {}).get("valid" if part == "calib" else part)
            window = f" ({dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d})" if dates else ""
            raise TrainingInputError(
                f"the {PARTS[part]} part{window} has {defaults:,} defaults in {len(labels):,} "
                "rows; every part needs defaults and non-defaults",
                hint="add rows or dates with defaults, or use a stratified split (no time column)",
            )


def make_split(y, time=None, seed: int = SEED, **shares) -> Split:
    """Out of time when `time` is given, stratified otherwise (the training command's rule)."""
    if time is not None:
        return out_of_time_split(time, y, seed=seed, **shares)
    return stratified_split(y, seed=seed, **shares)


def stratified_kfold(y, n_splits: int = 5, seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) positional index pairs of a shuffled StratifiedKFold with a fixed seed."""
    yv = np.asarray(y)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in folds.split(np.zeros(len(yv)), yv)]
