"""The whole scorer as one MLflow pyfunc: raw feature rows in; PD, score, grade and reasons out.

`CreditScorer` holds the fitted preparer, the LightGBM model as text, the calibrator, the master
scale and the reason texts. The booster and the reason explainer are built once (`load_context`
or first use), never per request. `score_frame` is the same path without MLflow (batch scoring).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.calibration import floor_pd
from models.scaling import score_from_pd

ID = "customer_id"
OUTPUT_COLUMNS = ["pd", "score", "grade", "reasons"]
TOP_K = 5
REQUIREMENTS = (
    "mlflow",
    "lightgbm",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "pyyaml",
    "pyarrow",
    "cloudpickle",
)


class CreditScorer(mlflow.pyfunc.PythonModel):
    """Raw feature rows -> customer_id, pd, score, grade, reasons (JSON list of top risk drivers).

    Columns may come in any order; extra columns are ignored and missing ones count as missing
    values. The id column (``id_col``, else ``customer_id``) is passed through as ``customer_id``.
    """

    def __init__(
        self,
        preparer: Any,
        booster_model: str,
        calibrator: Any,
        master_scale: Any,
        reason_texts: Mapping[str, str] | None = None,
        id_col: str | None = None,
        top_k: int = TOP_K,
    ):
        self.preparer = preparer
        self.booster_model = booster_model
        self.calibrator = calibrator
        self.master_scale = master_scale
        self.reason_texts = dict(reason_texts or {})
        self.id_col = id_col
        self.top_k = top_k
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

    def load_context(self, context: Any) -> None:
        """Build the booster and explainer once when MLflow loads the model."""
        self._build()

    def _build(self) -> dict[str, Any]:
        if self._runtime is None:
            from models.explain import ReasonExplainer

            booster = lgb.Booster(model_str=self.booster_model)
            explainer = ReasonExplainer(
                booster, self.feature_names, reason_text=self.reason_texts.get, k=self.top_k
            )
            self._runtime = {"booster": booster, "explainer": explainer}
        return self._runtime

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Prepared design matrix; missing input columns become missing values."""
        raw = frame.reindex(columns=self.input_columns)
        return self.preparer.transform(raw)

    def contributions(self, prepared: pd.DataFrame) -> np.ndarray:
        """TreeSHAP log-odds contributions (last column the bias) of prepared rows."""
        return self._build()["explainer"].contributions(prepared, with_bias=True)

    def pd_of(self, prepared: pd.DataFrame) -> np.ndarray:
        """Calibrated PD (floored) of prepared rows."""
        raw = self._build()["booster"].predict(prepared, raw_score=True)
        return floor_pd(self.calibrator.predict(raw))

    def score_frame(self, frame: pd.DataFrame, reasons: bool = True) -> pd.DataFrame:
        """Score raw feature rows: customer_id (when present), pd, score, grade, reasons."""
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame)
        runtime = self._build()
        X = self.prepare(frame)
        pd_ = self.pd_of(X)
        out = pd.DataFrame(index=frame.index)
        id_col = self.id_col if self.id_col in frame.columns else ID
        if id_col in frame.columns:
            out[ID] = frame[id_col].astype(str).to_numpy()
        out["pd"] = pd_
        out["score"] = np.asarray(score_from_pd(pd_), dtype=np.int64)
        out["grade"] = self.master_scale.grade_of(pd_).astype(str)
        if reasons:
            out["reasons"] = runtime["explainer"].reasons_json(X)
        return out.reset_index(drop=True)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        """MLflow entry point: `score_frame` with reasons."""
        return self.score_frame(model_input)


def pip_requirements() -> list[str]:
    """Pinned requirements from the installed versions, so a clean environment matches this one."""
    pins = []
    for package in REQUIREMENTS:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins
