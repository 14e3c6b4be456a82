"""Train a PD model end to end, without MLflow: check and prepare the table, split, fit LightGBM
and the WOE scorecard and choose the champion candidate among them and their blend
(`models.champion`), calibrate every candidate on held-out rows, validate them on the test window
and build the scorer of the chosen one. `models.tracking` logs the result; this module only
computes it. The choice is made on rows the test window does not hold, so its figures stay clean.

A table that cannot train as given (a target that is not 0/1, too few defaults, a time column
that is not dates, no usable feature, ...) raises `models.prepare.TrainingInputError` before any
model is fitted; columns that alone separate the classes (probable leaks) are left out and
reported. Deterministic: the same data and seed give the same metrics and predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.build import ID, TIME
from features.catalog import CATALOG, ReasonRules, monotone_constraints, reason_rules, reason_text
from features.labels import LABEL
from models import validation as v
from models.calibration import PDCalibrator, floor_pd
from models.champion import (
    CANDIDATES,
    SCORECARD_MAX_ROWS,
    Candidates,
    Choice,
    fit_candidates,
    stratified_sample,
)
from models.champion import timed as _timed
from models.lgbm import CV_FOLDS, DEFAULT_PARAMS, LGBMPDClassifier, tune
from models.master_scale import MasterScale, herfindahl
from models.prepare import (
    SHOWN_VALUES,
    TablePreparer,
    TrainingInputError,
    binary_target,
    check_dates,
    check_roles,
    probable_leaks,
)
from models.scaling import score_from_pd
from models.scorecard import WOEScorecard
from models.scorer import CreditScorer
from models.split import SEED, Split, check_classes, check_parts, make_split

SHAP_SAMPLE = 1000  # customers in the SHAP summary: enough for the beeswarm, 1 ms each
LEAK_SCREEN_ROWS = 100_000  # a leak separates any large sample; screening 1M rows cost ~10 s
PSI_REFERENCE_ROWS = 20_000  # ten score bins of 2,000: sampling PSI about 0.0005
MAX_FEATURES = 2_000  # scorecard bins each: 2,000 x 2,000 rows train in 3.5 min, 10,000 in > 50


@dataclass
class Evaluation:
    """One model's validation on the test rows: headline metrics and the validation tables."""

    name: str
    pd: np.ndarray
    metrics: dict[str, float]
    calibration_table: pd.DataFrame
    grade_table: pd.DataFrame
    tests: pd.DataFrame


@dataclass
class TrainingResult:
    """Everything a training run produced: the scorer of the chosen candidate, every candidate's
    evaluation on the test rows and the choice (`models.champion`), tables and the test rows."""

    scorer: CreditScorer
    candidates: dict[str, Evaluation]
    choice: Choice
    target: str
    id_col: str | None
    time_col: str | None
    params: dict[str, Any]
    psi: float
    psi_verdict: str
    importance: pd.Series
    scorecard_table: pd.DataFrame
    test_frame: pd.DataFrame
    y_test: np.ndarray
    shap_contrib: np.ndarray
    shap_features: pd.DataFrame
    data_summary: pd.DataFrame
    roles: dict[str, Any]
    split_sizes: dict[str, int]
    trials: list[dict[str, Any]] = field(default_factory=list)
    lgbm_model: LGBMPDClassifier | None = None
    scorecard_model: WOEScorecard | None = None
    timings: dict[str, float] = field(default_factory=dict)
    leaks: dict[str, float] = field(default_factory=dict)
    n_unlabelled: int = 0

    @property
    def unlabelled_share(self) -> float:
        """Share of the input rows left out for a missing target."""
        total = self.n_unlabelled + int(self.params.get("n_rows", 0))
        return self.n_unlabelled / total if total else 0.0

    @property
    def champion(self) -> Evaluation:
        """The registered model's evaluation: the chosen candidate's."""
        return self.candidates[self.choice.chosen]

    @property
    def challenger(self) -> Evaluation:
        """The model alone the champion is shown beside: the scorecard, or LightGBM when the
        scorecard was chosen."""
        return self.candidates["lightgbm" if self.choice.chosen == "scorecard" else "scorecard"]

    @property
    def metrics(self) -> dict[str, float]:
        """Flat metric dict for tracking: the champion's metrics, every candidate's prefixed with
        its name (`lightgbm_auc`, `scorecard_auc`, `blend_auc`, ...), the AUCs the choice was made
        on (`choice_auc_<candidate>`), LightGBM's weight in the champion and the blend, and PSI."""
        out = dict(self.champion.metrics)
        for name, evaluation in self.candidates.items():
            out.update({f"{name}_{k}": x for k, x in evaluation.metrics.items()})
        out.update({f"choice_auc_{name}": x for name, x in self.choice.auc.items()})
        out["lightgbm_weight"] = self.choice.weight
        out["blend_weight"] = self.choice.blend_weight
        out["psi"] = self.psi
        return out


def grade_table(
    y: np.ndarray, pd_: np.ndarray, grades: np.ndarray, scale: MasterScale
) -> pd.DataFrame:
    """Per grade (every grade of the scale, best first): count, share, mean PD, default rate and
    the Jeffreys test with its traffic light (grades without customers have no test)."""
    jeff = v.jeffreys_by_grade(
        pd.DataFrame({"grade": grades, "pd": pd_, "y": y}), grades=scale.grades
    ).set_index("grade")
    table = pd.DataFrame({"grade": scale.grades})
    table["n"] = table["grade"].map(pd.Series(grades).value_counts()).fillna(0).astype(np.int64)
    table["share"] = table["n"] / max(len(grades), 1)
    for column in ("defaults", "pd_mean", "default_rate", "p_value", "light"):
        table[column] = table["grade"].map(jeff[column])
    return table.rename(columns={"pd_mean": "mean_pd"})


def evaluate(
    name: str, y: np.ndarray, pd_: np.ndarray, scale: MasterScale, seed: int
) -> Evaluation:
    """Basel/ECB validation set of one model's calibrated PDs on the test rows."""
    metrics = v.summary_metrics(y, pd_, n_boot=200, seed=seed)
    grades = scale.grade_of(pd_)
    grades_t = grade_table(y, pd_, grades, scale)
    binom = v.binomial_test(int(y.sum()), len(y), float(np.mean(pd_)))
    hl = _hosmer_lemeshow(y, pd_)
    red = grades_t.loc[grades_t["light"] == "red", "grade"].tolist()
    metrics.update(
        {
            "default_rate": float(np.mean(y)),
            "mean_pd": float(np.mean(pd_)),
            "hhi": herfindahl(grades),
            "binomial_p": binom.p_value,
            "hosmer_lemeshow_p": hl.p_value,
            "jeffreys_red": float(len(red)),
            "jeffreys_yellow": float((grades_t["light"] == "yellow").sum()),
            "n_test": float(len(y)),
        }
    )
    tests = pd.DataFrame(
        [
            {"test": "binomial (portfolio)", "statistic": binom.defaults, "p_value": binom.p_value,
             "light": binom.light},
            {"test": f"Hosmer-Lemeshow (dof {hl.dof})", "statistic": hl.statistic,
             "p_value": hl.p_value, "light": ""},
        ]
    )  # fmt: skip
    return Evaluation(name, pd_, metrics, v.calibration_table(y, pd_), grades_t, tests)


def _hosmer_lemeshow(y: np.ndarray, pd_: np.ndarray) -> v.HosmerLemeshowResult:
    """The Hosmer-Lemeshow test, or NaN (dof 0) when the PDs form fewer than three groups: a model
    that gives (almost) everyone one PD has no fit across groups to test."""
    if v.pd_groups(pd_) < v.HOSMER_LEMESHOW_MIN_GROUPS:
        return v.HosmerLemeshowResult(float("nan"), 0, float("nan"))
    return v.hosmer_lemeshow(y, pd_)


def _data_summary(data: pd.DataFrame, y: np.ndarray, split: Split, time_col: str | None):
    rows = []
    for part in ("train", "valid", "calib", "test"):
        idx = getattr(split, part)
        row = {"part": part, "rows": len(idx), "defaults": int(y[idx].sum())}
        row["default_rate"] = float(y[idx].mean()) if len(idx) else float("nan")
        if time_col is not None and len(idx):
            t = pd.to_datetime(data[time_col].iloc[idx])
            row["from"], row["to"] = f"{t.min():%Y-%m-%d}", f"{t.max():%Y-%m-%d}"
        rows.append(row)
    return pd.DataFrame(rows)


def _monotone(
    prepared: pd.DataFrame, monotone: Mapping[str, int] | None, required: Mapping[str, int]
) -> dict[str, int] | None:
    """Given constraints on numeric features, plus the preparer's required ones (age): a caller's
    0 there leaves the requirement in force, the opposite direction is refused."""
    numeric = {c for c in prepared.columns if pd.api.types.is_numeric_dtype(prepared[c])}
    kept = {c: int(d) for c, d in (monotone or {}).items() if c in numeric and int(d) != 0}
    for col, direction in required.items():
        if kept.get(col, direction) != direction:
            raise TrainingInputError(
                f"{col!r} must keep monotone direction {direction} (risk may not rise with age); "
                "leave it out of the monotone constraints or exclude the column"
            )
        kept[col] = direction
    return kept or None


@dataclass
class _Design:
    """The checked labelled rows, their split, the prepared matrix and what the checks found."""

    data: pd.DataFrame
    y: np.ndarray
    split: Split
    preparer: TablePreparer
    X: pd.DataFrame
    id_col: str | None
    time_col: str | None
    leaks: dict[str, float]
    n_unlabelled: int

    def part(self, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Prepared rows and labels of one part of the split (train, valid, calib, test)."""
        rows = getattr(self.split, name)
        return self.X.iloc[rows], self.y[rows]

    @property
    def fit_rows(self) -> np.ndarray:
        """Rows the models fit on: the training part out of time (the validation window stops
        LightGBM early); else the training and validation parts, cross-fitted."""
        if self.time_col:
            return self.split.train
        return np.sort(np.concatenate([self.split.train, self.split.valid]))


def train_model(
    frame: pd.DataFrame,
    target: str,
    id_col: str | None = None,
    time_col: str | None = None,
    exclude: Sequence[str] = (),
    monotone: Mapping[str, int] | None = None,
    tune_trials: int = 0,
    seed: int = 42,
    *,
    reason_texts: Mapping[str, str] | None = None,
    reason_rules: ReasonRules | None = None,
    master_scale: MasterScale | None = None,
    n_estimators: int | None = None,
    tune_timeout: float | None = 600.0,
    scorecard_max_rows: int = SCORECARD_MAX_ROWS,
    client=None,
    design: _Design | None = None,
) -> TrainingResult:
    """Fit LightGBM and the scorecard, choose the champion candidate among them and their blend,
    calibrate and validate every candidate, and build the scorer of the chosen one.

    Out-of-time split when ``time_col`` is given (LightGBM early-stops on the validation window,
    the choice is made on the calibration rows); otherwise a seeded stratified split whose
    training and validation rows are cross-fitted in stratified folds (see `models.lgbm`), the
    choice made on out-of-fold scores. Either way the test rows are seen by no fit and no choice.
    Rows with a missing target are dropped and counted. ``monotone`` maps feature -> +1/-1 (e.g.
    from the catalog); an age column is always held at -1. On large tables the scorecard is
    fitted on a stratified sample of ``scorecard_max_rows`` fit rows (50k: bins of at least 5 %
    still hold 2,500 rows) and the PSI reference is a stratified sample of 20k fit rows (ten
    score bins); both seeded, so deterministic. The scorecard reads sentinel codes as they are
    (binned apart), LightGBM reads them as NaN. With a Dask ``client`` the LightGBM fit runs on
    its cluster (`models.dask_lgbm`); tuning, if asked, still runs here. ``design``: the
    table's `design_of` with the same arguments, when the caller checked it already.
    """
    timings: dict[str, float] = {}
    scale = master_scale or MasterScale.load()
    with _timed(timings, "prepare"):
        if design is None:
            design = design_of(frame, target, id_col, time_col, tuple(exclude), seed)
        y_fit = design.y[design.fit_rows]
        reference = design.fit_rows[stratified_sample(y_fit, PSI_REFERENCE_ROWS, seed)]
    mono = _monotone(design.X, monotone, design.preparer.monotone_)
    candidates, trials = _fit_candidates(
        design, mono, tune_trials, tune_timeout, n_estimators, scorecard_max_rows, seed, timings,
        client,
    )  # fmt: skip
    split = design.split
    t_ca = design.data[time_col].to_numpy()[split.calib] if time_col else None
    with _timed(timings, "calibrate"):
        calibrated = _calibrate(candidates, design, reference, t_ca)
    y_te = design.y[split.test]
    chosen = calibrated[candidates.choice.chosen]
    with _timed(timings, "validate"):
        evaluations = {
            name: evaluate(name, y_te, c.pd_test, scale, seed) for name, c in calibrated.items()
        }
        psi = v.psi(score_from_pd(chosen.pd_reference), score_from_pd(chosen.pd_test))
    scorer = _scorer(candidates, design, chosen.calibrator, scale, reason_texts, reason_rules)
    with _timed(timings, "explain"):
        sample, contrib = _shap_summary(scorer, design, seed)
    with _timed(timings, "test_frame"):
        test_frame = _test_frame(design.data, split, target, design.id_col, time_col)
    calibrators = {name: c.calibrator for name, c in calibrated.items()}
    params = _run_params(design, candidates, calibrators, exclude, mono)
    params.update(scorecard_rows=len(candidates.scorecard_rows), tune_trials=tune_trials, seed=seed)
    lgbm, scorecard = candidates.lightgbm, candidates.scorecard
    return TrainingResult(
        scorer=scorer,
        candidates=evaluations,
        choice=candidates.choice,
        target=target,
        id_col=design.id_col,
        time_col=time_col,
        params=params,
        psi=float(psi),
        psi_verdict=v.psi_verdict(psi),
        importance=lgbm.feature_importance("gain"),
        scorecard_table=scorecard.scorecard_table_,
        test_frame=test_frame,
        y_test=y_te,
        shap_contrib=contrib,
        shap_features=sample,
        data_summary=_data_summary(design.data, design.y, split, time_col),
        roles=design.preparer.report_,
        split_sizes=split.sizes(),
        trials=trials,
        lgbm_model=lgbm,
        scorecard_model=scorecard,
        timings=timings,
        leaks=design.leaks,
        n_unlabelled=design.n_unlabelled,
    )


def design_of(
    frame: pd.DataFrame,
    target: str,
    id_col: str | None,
    time_col: str | None,
    exclude: tuple[str, ...],
    seed: int,
) -> _Design:
    """Check the table, keep the labelled rows, split them and prepare the design matrix."""
    check_roles(frame.columns, target, id_col, time_col, exclude)
    data = _labelled_rows(frame, target)
    y = binary_target(data[target], target)
    check_classes(y)
    if time_col:
        check_dates(data[time_col], time_col)
    split = make_split(y, time=data[time_col] if time_col else None, seed=seed)
    check_parts(split, y)
    preparer, X, leaks = _prepare(data, y, split, target, id_col, time_col, exclude)
    _check_fit_rows(split, time_col, len(y))
    id_col = id_col or next(iter(preparer.report_["id"]), None)
    return _Design(data, y, split, preparer, X, id_col, time_col, leaks, len(frame) - len(data))


def _labelled_rows(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Rows with a target, positionally indexed; the frame itself (no copy) when all have one.
    Refused when there are none (an empty table, or snapshots whose labels have not matured)."""
    labelled = frame[target].notna().to_numpy()
    if not labelled.any():
        if frame.empty:
            raise TrainingInputError("the table has no rows", hint="give a table with data rows")
        raise TrainingInputError(
            f"no row has a target: all {len(frame):,} are missing",
            field=str(target),
            hint="give rows whose outcome is known (a snapshot's label matures after the horizon)",
        )
    if labelled.all() and frame.index.equals(pd.RangeIndex(len(frame))):
        return frame
    return frame.loc[labelled].reset_index(drop=True)


def _check_fit_rows(split: Split, time_col: str | None, n_labelled: int) -> None:
    """Refuse fewer rows per LightGBM fit than two leaves of `min_child_samples` rows: the booster
    could make no split and would give every customer the same PD."""
    fit = len(split.train)
    if not time_col:  # cross-fitted: each fold's booster fits on the other folds
        fit = (fit + len(split.valid)) * (CV_FOLDS - 1) // CV_FOLDS
    leaf = DEFAULT_PARAMS["min_child_samples"]
    if fit < 2 * leaf:
        raise TrainingInputError(
            f"too few rows to train: LightGBM would fit on {fit:,} of the {n_labelled:,} "
            f"labelled rows and needs {2 * leaf} (two leaves of {leaf} rows)",
            hint=f"give at least about {-(-n_labelled * 2 * leaf // max(fit, 1)):,} labelled rows",
        )


def _prepare(data, y, split: Split, target, id_col, time_col, exclude):
    """The preparer fitted on the training rows and the prepared matrix, refitted without the
    probable leaks when the training rows show any; (preparer, X, leaks) out."""

    def fitted(leaks: tuple[str, ...] = ()) -> TablePreparer:
        preparer = TablePreparer(
            target=target, id=id_col, time=time_col, exclude=exclude, leaks=leaks
        )
        return _checked_features(preparer.fit(data.iloc[split.train]))

    preparer = fitted()
    X = preparer.transform(data)
    screened = split.train[stratified_sample(y[split.train], LEAK_SCREEN_ROWS, SEED)]
    leaks = probable_leaks(X.iloc[screened], y[screened])
    if leaks:
        preparer = fitted(tuple(leaks))
        X = preparer.transform(data)
    return preparer, X, leaks


def _checked_features(preparer: TablePreparer) -> TablePreparer:
    """Refuse a prepared table with no usable feature, or with more than `MAX_FEATURES`."""
    n = len(preparer.feature_names_)
    if n == 0:
        report = preparer.report_
        why = [f"{c!r} {reason}" for c, reason in report["dropped"].items()]
        why += [f"{c!r} id" for c in report["id"]] + [f"{c!r} excluded" for c in report["excluded"]]
        shown = "; ".join(why[:SHOWN_VALUES]) + ("; ..." if len(why) > SHOWN_VALUES else "")
        raise TrainingInputError(
            f"no column is usable as a feature ({shown or 'the table has no other column'})",
            hint="add feature columns, or name fewer id, time or excluded columns",
        )
    if n > MAX_FEATURES:
        raise TrainingInputError(
            f"{n:,} feature columns, more than the {MAX_FEATURES:,} training takes in minutes "
            "(the scorecard challenger bins each column)",
            hint=f"keep at most {MAX_FEATURES:,} columns: drop or exclude the others",
        )
    return preparer


def _fit_candidates(
    design: _Design,
    mono,
    tune_trials,
    tune_timeout,
    n_estimators,
    scorecard_max_rows,
    seed,
    timings,
    client=None,
) -> tuple[Candidates, list[dict[str, Any]]]:
    """Tune LightGBM (optionally), fit it and the scorecard on the fit rows and choose the champion
    candidate (`models.champion.fit_candidates`); (candidates, trials) out."""
    X_tr, y_tr = design.part("train")
    X_va, y_va = design.part("valid")
    trials: list[dict[str, Any]] = []
    params: dict[str, Any] = {} if n_estimators is None else {"n_estimators": n_estimators}
    if tune_trials > 0:
        with _timed(timings, "tune"):
            params |= tune(
                X_tr, y_tr, X_va, y_va, n_trials=tune_trials, timeout=tune_timeout, seed=seed,
                monotone_constraints=mono,
                callback=lambda n, p, auc: trials.append(
                    {"trial": n, "params": p, "valid_auc": auc}
                ),
            )  # fmt: skip
    rows = design.fit_rows
    out_of_time = (
        {"eval_set": (X_va, y_va), "select_on": design.part("calib")} if design.time_col else {}
    )
    candidates = fit_candidates(
        design.X.iloc[rows], design.y[rows], design.preparer, monotone=mono, params=params,
        scorecard_max_rows=scorecard_max_rows, seed=seed, timings=timings, client=client,
        **out_of_time,
    )  # fmt: skip
    return candidates, trials


@dataclass
class _Calibrated:
    """One candidate's calibrator and floored PDs of the test rows and the PSI reference rows."""

    calibrator: PDCalibrator
    pd_test: np.ndarray
    pd_reference: np.ndarray


def _calibrate(candidates: Candidates, design: _Design, reference, t_calib):
    """Every candidate's log-odds calibrated on the calibration rows (out of time, the rows the
    choice was made on, whose log-odds the candidates hold); name -> `_Calibrated` out."""
    X, y, split = design.X, design.y, design.split
    parts = {"test": split.test, "reference": reference}
    if not design.time_col:
        parts["calib"] = split.calib
    log_odds = candidates.log_odds_of({part: X.iloc[rows] for part, rows in parts.items()})
    calib = log_odds.get("calib", candidates.selection)
    out = {}
    for name in CANDIDATES:
        calibrator = PDCalibrator(method="auto").fit(calib[name], y[split.calib], time=t_calib)
        out[name] = _Calibrated(
            calibrator,
            floor_pd(calibrator.predict(log_odds["test"][name])),
            floor_pd(calibrator.predict(log_odds["reference"][name])),
        )
    return out


def _scorer(
    candidates: Candidates,
    design: _Design,
    calibrator,
    scale: MasterScale,
    reason_texts,
    reason_rules=None,
) -> CreditScorer:
    """The scorer of the chosen candidate: the fitted preparer, the booster as text and/or the
    scorecard with LightGBM's weight, the calibrator, scale, texts and the catalog's rules for
    missing values."""
    weight, lgbm = candidates.choice.weight, candidates.lightgbm
    return CreditScorer(
        preparer=design.preparer,
        booster_model=(
            lgbm.booster_.model_to_string(num_iteration=lgbm.best_iteration_)
            if weight > 0
            else None
        ),
        calibrator=calibrator,
        master_scale=scale,
        reason_texts=dict(reason_texts or {}),
        id_col=design.id_col,
        reason_rules=reason_rules,
        scorecard=candidates.scorecard if weight < 1 else None,
        lightgbm_weight=weight,
    )


def _shap_summary(scorer: CreditScorer, design: _Design, seed: int):
    """A seeded sample of up to `SHAP_SAMPLE` test rows and their TreeSHAP contributions."""
    X_te = design.X.iloc[design.split.test]
    sample = X_te.sample(n=min(SHAP_SAMPLE, len(X_te)), random_state=seed).sort_index()
    return sample, scorer.contributions(sample)


def _run_params(design: _Design, candidates: Candidates, calibrators, exclude, mono):
    """The run's parameters for tracking: the choice, LightGBM's, the calibration methods, the
    split, roles, rows and leaks left out."""
    preparer, time_col = design.preparer, design.time_col
    lgbm, choice = candidates.lightgbm, candidates.choice
    params = {
        "champion_model": choice.chosen,
        "lightgbm_weight": choice.weight,
        "choice_on": choice.on,
        "choice_rows": choice.rows,
        **lgbm.lgb_params(lgbm.feature_names_),
        "best_iteration": ",".join(map(str, lgbm.fold_iterations_)),
        "calibration": str(calibrators[choice.chosen].chosen_method_),
        **{f"{n}_calibration": str(c.chosen_method_) for n, c in calibrators.items()},
        "split": "out_of_time" if time_col else "stratified",
        "target": preparer.target,
        "id_col": design.id_col or "",
        "time_col": time_col or "",
        "exclude": ",".join(exclude),
        "n_features": len(preparer.feature_names_),
        "cv_folds": 0 if time_col else lgbm.cv_folds,
        "age_constrained": ",".join(preparer.monotone_),
        "n_rows": len(design.data),
        "n_dropped_unlabelled": design.n_unlabelled,
        "leaks_dropped": ",".join(f"{c} (AUC {auc:.4f})" for c, auc in design.leaks.items()),
    }
    params.pop("monotone_constraints", None)
    params["monotone_features"] = len(mono or {})
    return params


def _test_frame(data, split, target, id_col, time_col) -> pd.DataFrame:
    """The raw test rows (every column, id and time first) the registry re-scores champions on;
    columns this model does not use stay, since the champion may use them."""
    first = [c for c in (id_col, time_col) if c]
    columns = [*first, *(c for c in data.columns if c not in first and c != target), target]
    positions = [data.columns.get_loc(c) for c in columns]
    return data.iloc[split.test, positions].reset_index(drop=True)


def train_from_snapshots(
    frame: pd.DataFrame, tune_trials: int = 0, seed: int = 42, **kwargs: Any
) -> TrainingResult:
    """Train on feature snapshots (customer_id, as_of, catalog features, default_flag): out of
    time, catalog monotone constraints and reason texts; only catalog features reach the model."""
    keys = (ID, TIME, LABEL)
    missing = [c for c in keys if c not in frame.columns]
    if missing:
        raise TrainingInputError(
            f"not feature snapshots: the columns {missing} are missing",
            hint="build snapshots with `creditrisk features`",
        )
    features = [c for c in frame.columns if c in CATALOG]
    exclude = [c for c in frame.columns if c not in CATALOG and c not in keys]
    return train_model(
        frame,
        LABEL,
        id_col=ID,
        time_col=TIME,
        exclude=exclude,
        monotone=dict(zip(features, monotone_constraints(features), strict=True)),
        tune_trials=tune_trials,
        seed=seed,
        reason_texts={c: reason_text(c) for c in features},
        reason_rules=reason_rules(features),
        **kwargs,
    )
