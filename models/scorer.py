"""The whole scorer as one MLflow pyfunc: raw feature rows in; PD, score, grade and reasons out.

`CreditScorer` holds the fitted preparer, the chosen champion candidate (the LightGBM model as
text, the WOE scorecard, or both with LightGBM's weight in their logit blend), the calibrator,
the master scale, the reason texts and the catalog's rules for missing values
(`features.catalog.ReasonRules`, none for flat tables). The booster and the reason explainer are
built once (`load_context` or first use), never per request. `score_frame` is the same path
without MLflow (batch scoring); `score_row` scores one row by the same kernels without pandas
(a service request).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd

from features.catalog import ReasonRules
from models.calibration import floor_pd
from models.prepare import SPECIAL_SUFFIX, is_text, text_of
from models.scaling import score_from_pd
from models.values import number_of

ID = "customer_id"
NUMERIC, TEXT, DATE = "numeric", "category/text", "date"  # the kinds a signature tells apart
OUTPUT_COLUMNS = ["pd", "score", "grade", "reasons"]
TOP_K = 5
REQUIREMENTS = (
    "mlflow",
    "lightgbm",
    "optbinning",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "pyyaml",
    "pyarrow",
    "cloudpickle",
    "numba",
)


@dataclass(frozen=True)
class RowScore:
    """One row's PD, score, grade and reasons (the list `score_frame`'s JSON text holds)."""

    pd: float
    score: int
    grade: str
    reasons: list[dict]


class CreditScorer(mlflow.pyfunc.PythonModel):
    """Raw feature rows -> customer_id, pd, score, grade, reasons (JSON list of top risk drivers).

    Columns may come in any order; extra columns are ignored and missing ones count as missing
    values. The id column (``id_col``, else ``customer_id``) is passed through as ``customer_id``.
    The log-odds are ``lightgbm_weight`` x the booster's + (1 - ``lightgbm_weight``) x the
    ``scorecard``'s (`models.champion`): the booster alone at 1 (no scorecard), the scorecard alone
    at 0 (no booster); reasons come from the same weighted contributions.
    """

    scorecard = None  # models saved before the champion choice: LightGBM alone
    lightgbm_weight = 1.0

    def __init__(
        self,
        preparer: Any,
        booster_model: str | None,
        calibrator: Any,
        master_scale: Any,
        reason_texts: Mapping[str, str] | None = None,
        id_col: str | None = None,
        top_k: int = TOP_K,
        reason_rules: ReasonRules | None = None,
        scorecard: Any = None,
        lightgbm_weight: float = 1.0,
    ):
        self.preparer = preparer
        self.booster_model = booster_model
        self.calibrator = calibrator
        self.master_scale = master_scale
        self.reason_texts = dict(reason_texts or {})
        self.id_col = id_col
        self.top_k = top_k
        self.reason_rules = reason_rules
        self.scorecard = scorecard
        self.lightgbm_weight = float(lightgbm_weight)
        self._runtime: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_runtime"] = None
        return state

    @property
    def input_columns(self) -> list[str]:
        """Raw columns the model reads (before preparation)."""
        return list(self.preparer.input_columns_)

    @property
    def feature_names(self) -> list[str]:
        """Prepared feature columns the booster sees."""
        return list(self.preparer.feature_names_)

    @property
    def signature(self) -> dict[str, str | None]:
        """Columns of the table the model was trained on that scoring reads, each with its kind
        (`NUMERIC`, `TEXT`, `DATE`; None for the id, of any kind): id, time, then the features."""
        preparer = self.preparer
        columns: dict[str, str | None] = {}
        if self.id_col is not None:
            columns[self.id_col] = None
        time = getattr(preparer, "report_", {}).get("time")
        if time is not None:
            columns[time] = DATE
        for column in preparer.input_columns_:
            columns[column] = TEXT if column in preparer.categories_ else NUMERIC
        return columns

    def signature_mismatches(self, frame: pd.DataFrame) -> list[tuple[str, str]]:
        """(column, what differs) for each signature column ``frame`` lacks or holds as another
        kind; a column with no value at all fits any kind. Extra columns are no difference."""
        found = []
        for column, kind in self.signature.items():
            if column not in frame.columns:
                found.append((column, "is missing"))
                continue
            values = frame[column]
            have = column_kind(values)
            if kind is not None and have != kind and not values.isna().all():
                found.append((column, f"is {have} ({values.dtype}), trained as {kind}"))
        return found

    def signature_differences(self, frame: pd.DataFrame) -> list[str]:
        """What ``frame`` lacks or holds as another kind than the model was trained on, one text
        per column naming it; empty when it fits (see `signature_mismatches`)."""
        return [f"{column!r} {what}" for column, what in self.signature_mismatches(frame)]

    def load_context(self, context: Any) -> None:
        """Build the booster and explainer once when MLflow loads the model."""
        self._build()

    def _build(self) -> dict[str, Any]:
        if self._runtime is None:
            from models.explain import BlendReasons, ReasonExplainer

            texts = {
                "reason_text": self.reason_texts.get,
                "k": self.top_k,
                "rules": getattr(self, "reason_rules", None),  # models saved before it: none
            }
            weight, runtime, parts = self.lightgbm_weight, {}, []
            if weight > 0:
                booster = lgb.Booster(model_str=self.booster_model)
                explainer = trees = ReasonExplainer(booster, self.feature_names, **texts)
                runtime["booster"], runtime["trees"] = booster, trees
                parts.append((weight, lambda X: trees.contributions(X, with_bias=True)))
            if weight < 1:
                parts.append((1.0 - weight, self._scorecard_contributions))
                explainer = BlendReasons(parts, self.feature_names, **texts)
            runtime["explainer"] = explainer
            self._runtime = runtime
        return self._runtime

    def _scorecard_input(self, prepared: pd.DataFrame) -> pd.DataFrame:
        from models.scorecard import scorecard_matrix

        return scorecard_matrix(self.preparer, prepared)

    def _scorecard_contributions(self, prepared: pd.DataFrame) -> np.ndarray:
        """The scorecard's log-odds contributions (bias last) laid out as the features."""
        own = self.scorecard.contributions(self._scorecard_input(prepared), with_bias=True)
        out = np.zeros((len(prepared), len(self.feature_names) + 1))
        columns = [self.feature_names.index(f) for f in self.scorecard.features_]
        out[:, columns] = own[:, :-1]
        out[:, -1] = own[:, -1]
        return out

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Prepared design matrix; missing input columns become missing values."""
        raw = frame.reindex(columns=self.input_columns)
        return self.preparer.transform(raw)

    def contributions(self, prepared: pd.DataFrame) -> np.ndarray:
        """Log-odds contributions (last column the bias) of prepared rows: TreeSHAP, the
        scorecard's, or their weighted sum; each row sums to its log-odds."""
        return self._build()["explainer"].contributions(prepared, with_bias=True)

    def log_odds(self, prepared: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of default of prepared rows."""
        weight = self.lightgbm_weight
        trees = self._build()["booster"].predict(prepared, raw_score=True) if weight > 0 else 0.0
        if weight == 1:
            return trees
        from models.champion import blend

        card = self.scorecard.decision_function(self._scorecard_input(prepared))
        return blend(weight, trees, card)

    def pd_of(self, prepared: pd.DataFrame) -> np.ndarray:
        """Calibrated PD (floored) of prepared rows."""
        return floor_pd(self.calibrator.predict(self.log_odds(prepared)))

    def score_frame(self, frame: pd.DataFrame, reasons: bool = True) -> pd.DataFrame:
        """Score raw feature rows: customer_id (when present), pd, score, grade, reasons."""
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame)
        runtime = self._build()
        X = self.prepare(frame)
        contrib = None
        if reasons and self.lightgbm_weight == 1:  # one TreeSHAP pass gives log-odds and reasons
            contrib, log_odds = runtime["trees"].explain(X)
            pd_ = floor_pd(self.calibrator.predict(log_odds))
        else:
            pd_ = self.pd_of(X)
        out = pd.DataFrame(index=frame.index)
        id_col = self.id_col if self.id_col in frame.columns else ID
        if id_col in frame.columns:
            out[ID] = frame[id_col].astype(str).to_numpy()
        out["pd"] = pd_
        out["score"] = np.asarray(score_from_pd(pd_), dtype=np.int64)
        out["grade"] = self.master_scale.grade_of(pd_).astype(str)
        if reasons:
            given = None if contrib is None else contrib[:, :-1]
            out["reasons"] = runtime["explainer"].reasons_json(X, contributions=given)
        return out.reset_index(drop=True)

    def score_row(self, values: Mapping[str, Any]) -> RowScore:
        """`score_frame` of the one raw row ``values`` (input name -> value; absent names are
        missing, extra ones ignored), without pandas: prepared as `TablePreparer.transform`
        prepares it, explained by the same TreeSHAP kernel on one thread, calibrated, graded and
        given its reasons by the frame's own steps. A scorecard blend (``lightgbm_weight`` < 1),
        categories LightGBM would refuse and contributions that are not finite fall back to
        `score_frame` of a one-row frame."""
        plan = self._row_plan()
        if plan is None:
            return self._row_by_frame(values)
        row, prepared, missing = plan.prepare(values)
        contrib, log_odds = plan.explain(row)
        pd_ = floor_pd(self.calibrator.predict(log_odds))
        explainer = self._build()["explainer"]
        reasons = explainer.row_reasons_json(contrib[:, :-1], prepared, missing)
        if reasons is None:
            return self._row_by_frame(values)
        score = int(np.asarray(score_from_pd(pd_), dtype=np.int64)[0])
        grade = str(self.master_scale.grade_of(pd_)[0])
        return RowScore(float(pd_[0]), score, grade, json.loads(reasons))

    def _row_plan(self) -> _RowPlan | None:
        """The row kernels, built once with the booster (None: rows go by `score_frame`)."""
        runtime = self._build()
        if "row" not in runtime:
            trees = runtime.get("trees")
            usable = trees is not None and self.lightgbm_weight == 1
            runtime["row"] = _RowPlan.of(self.preparer, trees) if usable else None
        return runtime["row"]

    def _row_by_frame(self, values: Mapping[str, Any]) -> RowScore:
        out = self.score_frame(pd.DataFrame([dict(values)])).iloc[0]
        return RowScore(
            float(out["pd"]), int(out["score"]), str(out["grade"]), json.loads(out["reasons"])
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        """MLflow entry point: `score_frame` with reasons."""
        return self.score_frame(model_input)


class _RowPlan:
    """One raw row to the booster's float row and the prepared values, feature by feature as
    `TablePreparer.transform` then `models.treeshap.lightgbm_matrix` make them, and its TreeSHAP
    on one thread."""

    NUMBER, SPECIAL, CATEGORY = "number", "special", "category"

    def __init__(self, steps: list[tuple[str, str, Any]], trees: Any):
        self.steps, self.trees = steps, trees

    @classmethod
    def of(cls, preparer: Any, trees: Any) -> _RowPlan | None:
        """Steps per feature: (number | special, input, sentinel codes) or (category, input,
        {fitted level: LightGBM code, NaN where the booster lacks it}); None where the booster
        knows other categorical columns than the preparer makes (`lightgbm_matrix` refuses)."""
        names = list(preparer.feature_names_)
        categorical = [c for c in names if c in preparer.categories_]
        known = trees.booster.pandas_categorical or []
        if len(categorical) != len(known):
            return None
        booster_levels = dict(zip(categorical, known, strict=True))
        steps = []
        for name in names:
            if name in preparer.categories_:
                codes = {c: float(i) for i, c in enumerate(booster_levels[name])}
                levels = {c: codes.get(c, np.nan) for c in preparer.categories_[name]}
                steps.append((cls.CATEGORY, name, levels))
                continue
            special = name not in preparer.input_columns_
            source = name.removesuffix(SPECIAL_SUFFIX) if special else name
            codes = preparer.sentinels_.get(source) if preparer.sentinels_to_nan else None
            steps.append((cls.SPECIAL if special else cls.NUMBER, source, tuple(codes or ())))
        return cls(steps, trees)

    def prepare(self, values: Mapping[str, Any]) -> tuple[np.ndarray, list[Any], list[bool]]:
        """(booster row 1 x features, prepared values: numbers or NaN, category text or None,
        where they are missing)."""
        n = len(self.steps)
        booster, prepared, missing = [np.nan] * n, [None] * n, [True] * n
        for j, (kind, source, arg) in enumerate(self.steps):
            value = values.get(source)
            if kind is self.CATEGORY:
                text = text_of(value)
                if text is not None and text in arg:  # unseen levels are missing
                    booster[j], prepared[j], missing[j] = arg[text], text, False
                continue
            number = float(value) if isinstance(value, float) else number_of(value)
            code = number in arg
            if code if kind is self.NUMBER else not code:  # codes are missing, specials the rest
                number = np.nan
            booster[j], prepared[j], missing[j] = number, number, number != number
        return np.array([booster]), prepared, missing

    def explain(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(contributions with the bias last, log-odds) of the row, as `ReasonExplainer.explain`
        computes them for a frame, on one thread."""
        trees = self.trees
        if trees.tables is not None:
            return trees.tables.explain(row, threads=1)
        booster, n = trees.booster, trees.num_iteration
        contrib = booster.predict(row, pred_contrib=True, num_iteration=n, num_threads=1)
        return contrib, booster.predict(row, raw_score=True, num_iteration=n, num_threads=1)


def column_kind(values: pd.Series) -> str:
    """`NUMERIC`, `TEXT` or `DATE` (datetimes), else the dtype's name."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return DATE
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return NUMERIC
    if is_text(values):
        return TEXT
    return str(values.dtype)


def pip_requirements() -> list[str]:
    """Pinned requirements from the installed versions, so a clean environment matches this one."""
    pins = []
    for package in REQUIREMENTS:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins
