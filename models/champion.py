"""The champion candidate: LightGBM, the WOE scorecard or a logit blend of the two, whichever
validates best on rows that neither model was fitted on.

With an out-of-time split the choice is made on the calibration half of the validation window
(LightGBM stops early on the other half, which would flatter it); without a time column, on the
out-of-fold log-odds of cross-fitted folds (LightGBM's own, and those of a scorecard refitted on
the other rows of each of LightGBM's folds: refitted whole, since bins chosen on every row would
flatter the scorecard on small tables). A blend's log-odds are w x LightGBM's + (1 - w) x the
scorecard's, with w on a grid of tenths. `models.training.train_model` and
`benchmarks/model_quality.py` both fit through `fit_candidates`, so the benchmark's champion is the
model the train command registers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from models.lgbm import CROSS_FIT_PARAMS, SEED, LGBMPDClassifier
from models.prepare import TablePreparer, TrainingInputError
from models.scorecard import WOEScorecard, scorecard_matrix
from models.validation import auc

CANDIDATES = ("lightgbm", "scorecard", "blend")
SCORECARD_MAX_ROWS = 50_000  # bins of at least 5 % still hold 2,500 rows
BLEND_WEIGHTS = tuple(round(0.1 * k, 1) for k in range(1, 10))  # LightGBM's weight in a blend
BLEND_MARGIN = 0.001  # AUC a blend must add to the better model alone: two models must pay
CHOICE_DEFAULTS = 1000  # defaults the held rows of the choice need to tell AUCs 0.005 apart


@contextmanager
def timed(timings: dict[str, float] | None, phase: str) -> Iterator[None]:
    """Add the seconds spent in the block to ``timings[phase]`` (nothing when None)."""
    started = time.perf_counter()
    yield
    if timings is not None:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - started


@dataclass(frozen=True)
class Choice:
    """Which candidate became the champion candidate, and every candidate's AUC on the rows the
    choice was made on (``on`` says which, ``rows`` how many)."""

    chosen: str
    blend_weight: float
    auc: dict[str, float]
    on: str
    rows: int

    def weight_of(self, candidate: str) -> float:
        """LightGBM's weight in a candidate's log-odds (1 LightGBM alone, 0 the scorecard)."""
        return {"lightgbm": 1.0, "scorecard": 0.0, "blend": self.blend_weight}[candidate]

    @property
    def weight(self) -> float:
        """LightGBM's weight in the chosen candidate's log-odds."""
        return self.weight_of(self.chosen)


def blend(weight: float, lightgbm: np.ndarray, scorecard: np.ndarray) -> np.ndarray:
    """Log-odds of the logit blend with LightGBM's ``weight``; the model alone at 1 or 0."""
    if weight == 1.0:
        return np.asarray(lightgbm, dtype=float)
    if weight == 0.0:
        return np.asarray(scorecard, dtype=float)
    return weight * np.asarray(lightgbm) + (1.0 - weight) * np.asarray(scorecard)


def choose(y: np.ndarray, lightgbm: np.ndarray, scorecard: np.ndarray, on: str) -> Choice:
    """The candidate with the highest AUC of the given log-odds: the better model alone (the
    scorecard on a tie), or the best blend if it adds at least `BLEND_MARGIN` to that."""
    blends = {w: auc(y, blend(w, lightgbm, scorecard)) for w in BLEND_WEIGHTS}
    best_weight = max(blends, key=blends.get)
    figures = {"lightgbm": auc(y, lightgbm), "scorecard": auc(y, scorecard)}
    figures["blend"] = blends[best_weight]
    alone = "lightgbm" if figures["lightgbm"] > figures["scorecard"] else "scorecard"
    chosen = "blend" if figures["blend"] >= figures[alone] + BLEND_MARGIN else alone
    return Choice(chosen, best_weight, figures, on, len(y))


@dataclass
class Candidates:
    """The fitted LightGBM and scorecard candidates, the choice between them (and their blend),
    and each candidate's log-odds on the rows it was made on."""

    lightgbm: LGBMPDClassifier
    scorecard: WOEScorecard
    preparer: TablePreparer
    choice: Choice
    selection: dict[str, np.ndarray]
    scorecard_rows: np.ndarray

    def log_odds(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each candidate's log-odds of prepared rows (candidate -> log-odds)."""
        return self.log_odds_of({"rows": X})["rows"]

    def log_odds_of(self, parts: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, np.ndarray]]:
        """Each candidate's log-odds of each set of prepared rows (part -> candidate -> log-odds);
        the scorecard scores in a thread beside LightGBM."""
        scored = _both_log_odds(self.lightgbm, self.scorecard, self.preparer, parts)
        return {p: _all_log_odds(self.choice.blend_weight, *s) for p, s in scored.items()}


def _all_log_odds(weight: float, lightgbm: np.ndarray, card: np.ndarray) -> dict[str, np.ndarray]:
    return {"lightgbm": lightgbm, "scorecard": card, "blend": blend(weight, lightgbm, card)}


def _both_log_odds(lightgbm, card, preparer, parts: Mapping[str, pd.DataFrame]):
    """LightGBM's and the scorecard's log-odds of each set of prepared rows (part -> pair); the
    scorecard, mostly single-threaded, scores in a thread beside LightGBM."""

    def card_log_odds(X: pd.DataFrame) -> np.ndarray:
        return card.decision_function(scorecard_matrix(preparer, X))

    with ThreadPoolExecutor(max_workers=1) as pool:
        cards = {part: pool.submit(card_log_odds, X) for part, X in parts.items()}
        trees = {part: lightgbm.decision_function(X) for part, X in parts.items()}
        return {part: (trees[part], cards[part].result()) for part in parts}


def fit_candidates(
    X: pd.DataFrame,
    y: np.ndarray,
    preparer: TablePreparer,
    *,
    eval_set: tuple[pd.DataFrame, np.ndarray] | None = None,
    select_on: tuple[pd.DataFrame, np.ndarray] | None = None,
    monotone: Mapping[str, int] | None = None,
    params: Mapping[str, Any] | None = None,
    scorecard_max_rows: int = SCORECARD_MAX_ROWS,
    seed: int = SEED,
    timings: dict[str, float] | None = None,
    client=None,
) -> Candidates:
    """Fit LightGBM and the scorecard on the prepared rows ``X`` and choose the champion candidate.

    With ``eval_set`` LightGBM stops early on those rows and the choice is made on ``select_on``
    (rows neither model saw). Without, LightGBM is cross-fitted over ``X`` and the choice is made
    on the held rows of its folds: its out-of-fold log-odds beside those of a scorecard refitted
    on the same fold's other rows, in as many folds as hold `CHOICE_DEFAULTS` defaults (all of
    them on small tables). The scorecards fit on a seeded stratified sample of at most
    ``scorecard_max_rows`` rows (the folds kept to it), in a thread beside LightGBM. ``params``
    are further `LGBMPDClassifier` parameters (over `CROSS_FIT_PARAMS` when cross-fitting); with
    a Dask ``client`` LightGBM fits on its cluster (`models.dask_lgbm`).
    """
    if eval_set is not None and select_on is None:
        raise ValueError("an out-of-time fit needs select_on: rows neither model was fitted on")
    rows = stratified_sample(y, scorecard_max_rows, seed)
    card_input = scorecard_matrix(preparer, X.iloc[rows])
    params = {**(CROSS_FIT_PARAMS if eval_set is None else {}), **(params or {})}
    lightgbm = LGBMPDClassifier(**params, monotone_constraints=monotone, seed=seed)
    folds = [] if eval_set is not None else _within(lightgbm.cross_fit_folds(y), rows, len(y))
    folds = _enough_defaults(folds, y[rows])
    with ThreadPoolExecutor(max_workers=1) as pool:
        card_job = pool.submit(_fit_scorecards, card_input, y[rows], folds, monotone, timings)
        with timed(timings, "lightgbm"):
            lightgbm.fit(X, y, eval_set=eval_set, client=client)
        card, held, card_oof = card_job.result()
    with timed(timings, "choose"):
        if eval_set is None:
            on = f"cross-fitted folds ({len(folds)} of {len(lightgbm.fold_iterations_)})"
            y_sel, scores = y[rows][held], (lightgbm.oof_raw_[rows][held], card_oof)
        else:
            X_sel, y_sel = select_on
            on = "out-of-time window (calibration half)"
            scores = _both_log_odds(lightgbm, card, preparer, {"rows": X_sel})["rows"]
        choice = choose(np.asarray(y_sel), *scores, on=on)
    selection = _all_log_odds(choice.blend_weight, *scores)
    return Candidates(lightgbm, card, preparer, choice, selection, rows)


def stratified_sample(y: np.ndarray, max_rows: int, seed: int = SEED) -> np.ndarray:
    """Sorted positions of at most ``max_rows`` rows, stratified by y (all rows when fewer)."""
    if len(y) <= max_rows:
        return np.arange(len(y))
    keep, _ = train_test_split(
        np.arange(len(y)), train_size=max_rows, random_state=seed, stratify=y
    )
    return np.sort(keep)


def _within(folds, rows: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held) folds of n rows kept to the sample ``rows``, as positions into it."""
    position = np.full(n, -1)
    position[rows] = np.arange(len(rows))
    return [tuple(p[p >= 0] for p in (position[train], position[held])) for train, held in folds]


def _enough_defaults(folds, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first folds whose held rows hold `CHOICE_DEFAULTS` defaults between them (all when
    they hold fewer)."""
    taken, defaults = [], 0
    for train, held in folds:
        if defaults >= CHOICE_DEFAULTS:
            break
        taken.append((train, held))
        defaults += int(y[held].sum())
    return taken


def _fit_scorecards(card_input: pd.DataFrame, y: np.ndarray, folds, monotone, timings):
    """The scorecard fitted on every row of ``card_input``, and for each (train, held) fold one
    refitted on train that scores held (a fold where no feature is informative scores all its
    rows alike); (scorecard, held positions, their out-of-fold log-odds) out."""
    with timed(timings, "scorecard"):
        card = WOEScorecard(monotone=monotone).fit(card_input, y)
        held_rows, scores = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
        for train, held in folds:
            try:
                fold_card = WOEScorecard(monotone=monotone).fit(card_input.iloc[train], y[train])
                scores.append(fold_card.decision_function(card_input.iloc[held]))
            except TrainingInputError:
                scores.append(np.zeros(len(held)))
            held_rows.append(held)
    return card, np.concatenate(held_rows), np.concatenate(scores)
