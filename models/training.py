"""Train a PD model end to end, without MLflow: prepare, split, fit the LightGBM champion candidate
and the WOE scorecard challenger, calibrate both on held-out rows, validate on the test window and
build the scorer. `models.tracking` logs the result; this module only computes it.

Deterministic: the same data and seed give the same metrics and predictions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from features.build import ID, TIME
from features.catalog import CATALOG, monotone_constraints, reason_text
from features.labels import LABEL
from models import validation as v
from models.calibration import PDCalibrator
from models.lgbm import LGBMPDClassifier, tune
from models.master_scale import MasterScale, herfindahl
from models.prepare import TablePreparer
from models.scaling import score_from_pd
from models.scorecard import WOEScorecard
from models.scorer import PD_FLOOR, CreditScorer
from models.split import Split, make_split

SHAP_SAMPLE = 1000  # customers in the SHAP summary: enough for the beeswarm, 1 ms each
SCORECARD_MAX_ROWS = 50_000
PSI_REFERENCE_ROWS = 20_000  # ten score bins of 2,000: sampling PSI about 0.0005


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
    """Everything a training run produced: the scorer, evaluations, tables and the test rows."""

    scorer: CreditScorer
    champion: Evaluation
    challenger: Evaluation
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

    @property
    def metrics(self) -> dict[str, float]:
        """Flat metric dict for tracking: champion metrics plus `scorecard_*` and PSI."""
        out = dict(self.champion.metrics)
        out.update({f"scorecard_{k}": x for k, x in self.challenger.metrics.items()})
        out["psi"] = self.psi
        return out


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - started


def _binary_target(series: pd.Series, name: str) -> np.ndarray:
    y = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"target {name!r} must be 0/1 (1 = default); found {int(bad.sum())} other values "
            f"such as {series[bad].iloc[:3].tolist()}"
        )
    if np.unique(y).size < 2:
        raise ValueError(f"target {name!r} has one class only; need defaults and non-defaults")
    return y


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
    hl = v.hosmer_lemeshow(y, pd_)
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
            raise ValueError(
                f"{col!r} must keep monotone direction {direction} (risk may not rise with age); "
                "leave it out of the monotone constraints or exclude the column"
            )
        kept[col] = direction
    return kept or None


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
    master_scale: MasterScale | None = None,
    n_estimators: int = 2000,
    tune_timeout: float | None = 600.0,
    scorecard_max_rows: int = SCORECARD_MAX_ROWS,
) -> TrainingResult:
    """Fit, calibrate and validate the champion candidate and the scorecard challenger.

    Out-of-time split when ``time_col`` is given (LightGBM early-stops on the validation window);
    otherwise a seeded stratified split whose training and validation rows are cross-fitted in
    stratified folds (see `models.lgbm`); rows with a missing target are dropped. ``monotone`` maps
    feature -> +1/-1 (e.g. from the catalog); an age column is always held at -1.
    On large tables the scorecard is fitted on a stratified sample of ``scorecard_max_rows``
    training rows (50k: bins of at least 5 % still hold 2,500 rows) and the PSI reference is a
    stratified sample of 20k training rows (ten score bins); both seeded, so deterministic. The
    scorecard reads sentinel codes as they are (binned apart), the champion reads them as NaN.
    """
    if target not in frame.columns:
        raise KeyError(f"target column {target!r} not in the table; columns: {list(frame.columns)}")
    timings: dict[str, float] = {}
    scale = master_scale or MasterScale.load()
    with _timed(timings, "prepare"):
        data = _labelled_rows(frame, target)
        y = _binary_target(data[target], target)
        split = make_split(y, time=data[time_col] if time_col else None, seed=seed)
        preparer = TablePreparer(target=target, id=id_col, time=time_col, exclude=tuple(exclude))
        preparer.fit(data.iloc[split.train])
        X = preparer.transform(data)
        id_col = id_col or next(iter(preparer.report_["id"]), None)
        X_tr, y_tr = X.iloc[split.train], y[split.train]
        X_va, y_va = X.iloc[split.valid], y[split.valid]
        y_ca, y_te = y[split.calib], y[split.test]
        reference = _subsample(y_tr, PSI_REFERENCE_ROWS, seed)
        sc_rows = _subsample(y_tr, scorecard_max_rows, seed)
    mono = _monotone(X, monotone, preparer.monotone_)

    trials: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    if tune_trials > 0:
        with _timed(timings, "tune"):
            params = tune(
                X_tr, y_tr, X_va, y_va, n_trials=tune_trials, timeout=tune_timeout, seed=seed,
                monotone_constraints=mono,
                callback=lambda n, p, auc: trials.append(
                    {"trial": n, "params": p, "valid_auc": auc}
                ),
            )  # fmt: skip
    with _timed(timings, "lightgbm"):
        lgbm = LGBMPDClassifier(
            **params, n_estimators=n_estimators, monotone_constraints=mono, seed=seed
        )
        if time_col:  # early stopping on the later validation window
            lgbm.fit(X_tr, y_tr, eval_set=(X_va, y_va))
        else:  # cross-fitted over stratified folds of the training and validation rows
            fit_rows = np.sort(np.concatenate([split.train, split.valid]))
            lgbm.fit(X.iloc[fit_rows], y[fit_rows])
    del X_tr, X_va
    t_ca = data[time_col].to_numpy()[split.calib] if time_col else None
    # The scorecard challenger (mostly single-threaded) runs beside the champion's predictions.
    with ThreadPoolExecutor(max_workers=1) as pool:
        challenger_job = pool.submit(
            _fit_challenger, preparer, data, X, split, sc_rows, y, t_ca, mono, timings
        )
        with _timed(timings, "calibrate"):
            X_te = X.iloc[split.test]
            raw_ca = lgbm.decision_function(X.iloc[split.calib])
            raw_te = lgbm.decision_function(X_te)
            calibrator = PDCalibrator(method="auto").fit(raw_ca, y_ca, time=t_ca)
            pd_test = _floor(calibrator.predict(raw_te))
            raw_ref = lgbm.decision_function(X.iloc[split.train[reference]])
            pd_train = _floor(calibrator.predict(raw_ref))
        scorecard, sc_calibrator, sc_pd_test = challenger_job.result()

    with _timed(timings, "validate"):
        champion = evaluate("lightgbm", y_te, pd_test, scale, seed)
        challenger = evaluate("scorecard", y_te, sc_pd_test, scale, seed)
        psi = v.psi(score_from_pd(pd_train), score_from_pd(pd_test))

    booster_text = lgbm.booster_.model_to_string(num_iteration=lgbm.best_iteration_)
    scorer = CreditScorer(
        preparer=preparer,
        booster_model=booster_text,
        calibrator=calibrator,
        master_scale=scale,
        reason_texts=dict(reason_texts or {}),
        id_col=id_col,
    )
    with _timed(timings, "explain"):
        sample = X_te.sample(n=min(SHAP_SAMPLE, len(X_te)), random_state=seed).sort_index()
        contrib = scorer.contributions(sample)
    with _timed(timings, "test_frame"):
        test_frame = _test_frame(data, split, target, id_col, time_col)
    run_params = {
        **lgbm.lgb_params(lgbm.feature_names_),
        "best_iteration": ",".join(map(str, lgbm.fold_iterations_)),
        "calibration": str(calibrator.chosen_method_),
        "scorecard_calibration": str(sc_calibrator.chosen_method_),
        "split": "out_of_time" if time_col else "stratified",
        "target": target,
        "id_col": id_col or "",
        "time_col": time_col or "",
        "exclude": ",".join(exclude),
        "n_features": len(preparer.feature_names_),
        "cv_folds": 0 if time_col else lgbm.cv_folds,
        "age_constrained": ",".join(preparer.monotone_),
        "n_rows": len(data),
        "scorecard_rows": min(len(y_tr), scorecard_max_rows),
        "n_dropped_unlabelled": len(frame) - len(data),
        "tune_trials": tune_trials,
        "seed": seed,
    }
    run_params.pop("monotone_constraints", None)
    run_params["monotone_features"] = len(mono or {})
    return TrainingResult(
        scorer=scorer,
        champion=champion,
        challenger=challenger,
        target=target,
        id_col=id_col,
        time_col=time_col,
        params=run_params,
        psi=float(psi),
        psi_verdict=v.psi_verdict(psi),
        importance=lgbm.feature_importance("gain"),
        scorecard_table=scorecard.scorecard_table_,
        test_frame=test_frame,
        y_test=y_te,
        shap_contrib=contrib,
        shap_features=sample,
        data_summary=_data_summary(data, y, split, time_col),
        roles=preparer.report_,
        split_sizes=split.sizes(),
        trials=trials,
        lgbm_model=lgbm,
        scorecard_model=scorecard,
        timings=timings,
    )


def _fit_challenger(preparer, data, X, split: Split, sc_rows, y, t_calib, mono, timings):
    """Fit the WOE scorecard on the training sample and calibrate it on the calibration rows;
    (scorecard, calibrator, floored test PDs) out."""
    with _timed(timings, "scorecard"):
        train_rows = split.train[sc_rows]
        scorecard = WOEScorecard(monotone=mono).fit(
            _scorecard_matrix(preparer, data, X, train_rows), y[train_rows]
        )
        raw_calib, raw_test = (
            scorecard.decision_function(_scorecard_matrix(preparer, data, X, idx))
            for idx in (split.calib, split.test)
        )
        calibrator = PDCalibrator(method="auto").fit(raw_calib, y[split.calib], time=t_calib)
        return scorecard, calibrator, _floor(calibrator.predict(raw_test))


def _labelled_rows(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Rows with a target, positionally indexed; the frame itself (no copy) when all have one."""
    labelled = frame[target].notna().to_numpy()
    if labelled.all() and frame.index.equals(pd.RangeIndex(len(frame))):
        return frame
    return frame.loc[labelled].reset_index(drop=True)


def _scorecard_matrix(
    preparer: TablePreparer, data: pd.DataFrame, X: pd.DataFrame, rows: np.ndarray
) -> pd.DataFrame:
    """The scorecard's input for ``rows``: the prepared columns with the raw sentinel codes put
    back (what ``TablePreparer(sentinels_to_nan=False)`` gives), so the scorecard bins codes apart
    from missing values (Taiwan 5-fold AUC 0.7690 against 0.7674 with codes blanked to NaN)."""
    out = X.iloc[rows, [X.columns.get_loc(c) for c in preparer.input_columns_]]
    for column in preparer.sentinels_:
        out[column] = pd.to_numeric(data[column].iloc[rows], errors="coerce").astype(float)
    return out


def _subsample(y: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Positions of at most ``max_rows`` rows, stratified by y (all rows when fewer)."""
    if len(y) <= max_rows:
        return np.arange(len(y))
    keep, _ = train_test_split(
        np.arange(len(y)), train_size=max_rows, random_state=seed, stratify=y
    )
    return np.sort(keep)


def _floor(p: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(p, dtype=float), PD_FLOOR, 1.0)


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
        raise KeyError(f"snapshots lack {missing}; build them with `creditrisk features`")
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
        **kwargs,
    )
