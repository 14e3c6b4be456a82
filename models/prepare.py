"""Turn any flat table into a design matrix LightGBM and the scorecard accept, without user work.

`infer_roles` decides what each column is (id, time, excluded, constant, categorical, numeric, and
which numeric columns carry sentinel codes) and says so in a small report dict; `TablePreparer`
learns those roles on fit and applies them identically on every later transform.

Protected attributes (sex, marital status, race, ethnicity, religion, nationality, date of birth)
never reach a model. Age is the one exception, on the terms of US Regulation B (12 CFR
1002.6(b)(2)(ii)): an empirically derived, statistically sound scoring system may use an
applicant's age provided an elderly applicant is never assigned a negative value. A numeric age
column is therefore kept only with a monotone constraint (`AGE_CONSTRAINT`: risk never rises
with age), reported in `monotone_`; `drop_protected=True` with `allow_age=False` drops it too.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

SPECIAL_SUFFIX = "_special"
MAX_NEGATIVE_CODES = 3
MAX_HIGH_CODE_SHARE = 0.05
ID_NAME = re.compile(r"^(unnamed: ?\d+|id|.*[_ ]id)$", re.IGNORECASE)
PROTECTED_ATTRIBUTES = frozenset(
    {
        "sex",
        "gender",
        "date_of_birth",
        "birth_date",
        "dob",
        "marriage",
        "marital",
        "marital_status",
        "race",
        "ethnicity",
        "religion",
        "nationality",
        "national_origin",
    }
)
AGE_ATTRIBUTES = frozenset({"age", "customer_age", "applicant_age", "age_years"})
AGE_CONSTRAINT = -1


def _name_key(column) -> str:
    return re.sub(r"[^a-z]+", "_", str(column).lower()).strip("_")


def protected_attributes(columns, allow_age: bool = True) -> list[str]:
    """Columns whose name is a protected attribute (sex, marital status, race, ...); with
    `allow_age=False` age columns too."""
    names = PROTECTED_ATTRIBUTES if allow_age else PROTECTED_ATTRIBUTES | AGE_ATTRIBUTES
    return [c for c in columns if _name_key(c) in names]


def _high_code(value: float) -> bool:
    """96..99, 996..999, 9996..9999, ...: the "not applicable" codes of count fields."""
    if value < 96 or value != int(value):
        return False
    digits = len(str(int(value)))
    return 10**digits - 4 <= value <= 10**digits - 1


def sentinel_codes(values: pd.Series) -> list[float]:
    """Codes in a numeric column that mean "special", not a quantity.

    Negative: a column that is otherwise non-negative (>= 50 % of values) with at most three
    distinct whole negative values (e.g. -1 "never", -2 "no use"). High: 96..99 / 996..999 style
    whole values above a gap (every other value below half the smallest code), in at most 5 % of
    rows (e.g. 96/98 in Give Me Some Credit's past-due counts).
    """
    x = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if x.size == 0:
        return []
    negatives = np.unique(x[x < 0])
    if negatives.size:
        whole = bool(np.all(negatives == np.round(negatives)))
        if whole and negatives.size <= MAX_NEGATIVE_CODES and (x >= 0).mean() >= 0.5:
            return [float(v) for v in negatives]
        return []
    distinct = np.unique(x)
    codes = [float(v) for v in distinct if _high_code(v)]
    if not codes:
        return []
    rest = distinct[~np.isin(distinct, codes)]
    in_codes = np.isin(x, codes).mean()
    if rest.size and rest.max() * 2 < min(codes) and in_codes <= MAX_HIGH_CODE_SHARE:
        return codes
    return []


def _is_row_counter_id(name: str, s: pd.Series) -> bool:
    """Whole-number (or string) column named like an id whose values are unique per row."""
    if not ID_NAME.match(str(name)) or len(s) < 2:
        return False
    if pd.api.types.is_float_dtype(s):
        v = s.dropna()
        if len(v) != len(s) or not np.all(v == np.round(v)):
            return False
    return bool(s.is_unique)


def _as_text(s: pd.Series) -> pd.Series:
    """Values as Python strings (object dtype), missing as None; the same at fit and transform."""
    return s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))


def _is_number(s: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s)


def _is_categorical(s: pd.Series) -> bool:
    return (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(s)
        or pd.api.types.is_string_dtype(s)
    )


def infer_roles(
    df: pd.DataFrame,
    target: str | None,
    id: str | None = None,
    time: str | None = None,
    exclude: tuple[str, ...] | list[str] = (),
    drop_protected: bool = True,
    allow_age: bool = True,
) -> dict[str, Any]:
    """Decide each column's role and report it.

    Protected attributes (by name, see `PROTECTED_ATTRIBUTES`) are dropped unless
    `drop_protected=False`: the project keeps them out of models. A numeric age column is kept
    under the age constraint (see the module docstring) unless `allow_age=False`.
    Keys: target, id (list), time, excluded, dropped {column: reason}, categorical, numeric,
    sentinels {column: codes}, special_indicators (columns that get a `<col>_special` code
    column: more than one code, or codes alongside genuinely missing values), age_constrained.
    """
    given = [c for c in (target, id, time, *exclude) if c is not None]
    missing = [c for c in given if c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the table; columns are {list(df.columns)}")
    report: dict[str, Any] = {
        "n_rows": len(df),
        "target": target,
        "id": [id] if id is not None else [],
        "time": time,
        "excluded": list(exclude),
        "dropped": {},
        "categorical": [],
        "numeric": [],
        "sentinels": {},
        "special_indicators": [],
        "age_constrained": [],
    }
    taken = set(given)
    if drop_protected:
        for col in protected_attributes((c for c in df.columns if c not in taken), allow_age):
            report["dropped"][col] = "protected attribute"
            taken.add(col)
    for col in df.columns:
        if col in taken:
            continue
        s = df[col]
        if _is_row_counter_id(col, s):
            report["id"].append(col)
        elif s.nunique(dropna=False) <= 1:
            report["dropped"][col] = "constant"
        elif drop_protected and _name_key(col) in AGE_ATTRIBUTES and not _is_number(s):
            report["dropped"][col] = "protected attribute (age, not numeric: cannot be constrained)"
        elif _is_categorical(s):
            n_levels = s.nunique()
            if n_levels > max(50, 0.5 * len(s)):
                report["dropped"][col] = f"id-like text ({n_levels} distinct values)"
            else:
                report["categorical"].append(col)
        elif _is_number(s):
            report["numeric"].append(col)
            if drop_protected and _name_key(col) in AGE_ATTRIBUTES:
                report["age_constrained"].append(col)
            codes = [] if pd.api.types.is_bool_dtype(s) else sentinel_codes(s)
            if codes:
                report["sentinels"][col] = codes
                if len(codes) > 1 or s.isna().any():
                    report["special_indicators"].append(col)
        else:
            report["dropped"][col] = f"unsupported dtype {s.dtype}"
    return report


class TablePreparer(TransformerMixin, BaseEstimator):
    """Learn column roles on fit; transform to float columns plus fixed-category columns.

    Sentinel codes become NaN (with a `<col>_special` column holding the code where informative);
    text columns become `category` with the categories seen at fit (unseen values -> NaN); ids,
    time, excluded, constant and protected-attribute columns are dropped. With
    `sentinels_to_nan=False` codes stay as they are (for `WOEScorecard`, which bins them apart).
    """

    def __init__(
        self,
        target: str | None = None,
        id: str | None = None,
        time: str | None = None,
        exclude: tuple[str, ...] = (),
        special_indicators: bool = True,
        drop_protected: bool = True,
        sentinels_to_nan: bool = True,
        allow_age: bool = True,
    ):
        self.target = target
        self.id = id
        self.time = time
        self.exclude = exclude
        self.special_indicators = special_indicators
        self.drop_protected = drop_protected
        self.sentinels_to_nan = sentinels_to_nan
        self.allow_age = allow_age

    def fit(self, X: pd.DataFrame, y=None) -> TablePreparer:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("TablePreparer needs a pandas DataFrame with named columns")
        target = self.target if self.target in X.columns else None
        self.report_ = infer_roles(
            X,
            target,
            self.id,
            self.time,
            tuple(self.exclude),
            self.drop_protected,
            self.allow_age,
        )
        self.sentinels_ = dict(self.report_["sentinels"])
        self.categories_ = {
            c: sorted(_as_text(X[c]).dropna().unique()) for c in self.report_["categorical"]
        }
        keep_specials = self.special_indicators and self.sentinels_to_nan
        self.specials_ = list(self.report_["special_indicators"]) if keep_specials else []
        self.input_columns_ = [
            c for c in X.columns if c in self.report_["numeric"] or c in self.categories_
        ]
        self.feature_names_ = [*self.input_columns_, *(c + SPECIAL_SUFFIX for c in self.specials_)]
        self.monotone_ = {c: AGE_CONSTRAINT for c in self.report_["age_constrained"]}
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if not hasattr(self, "feature_names_"):
            raise RuntimeError("TablePreparer is not fitted: call fit(X) first")
        absent = [c for c in self.input_columns_ if c not in X.columns]
        if absent:
            raise KeyError(f"columns {absent} seen at fit are missing; pass the same table layout")
        out: dict[str, pd.Series] = {}
        specials: dict[str, pd.Series] = {}
        for col in self.input_columns_:
            s = X[col]
            if col in self.categories_:
                text = _as_text(s)
                dtype = pd.CategoricalDtype(self.categories_[col])
                out[col] = pd.Series(pd.Categorical(text, dtype=dtype), index=X.index)
                continue
            v = pd.to_numeric(s, errors="coerce").astype(float)
            codes = self.sentinels_.get(col)
            if codes and self.sentinels_to_nan:
                is_code = v.isin(codes)
                if col in self.specials_:
                    specials[col + SPECIAL_SUFFIX] = v.where(is_code)
                v = v.mask(is_code)
            out[col] = v
        out.update(specials)
        return pd.DataFrame(out, index=X.index)[self.feature_names_]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.feature_names_, dtype=object)
