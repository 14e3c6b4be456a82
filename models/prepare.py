"""Turn any flat table into a design matrix LightGBM and the scorecard accept, without user work.

`infer_roles` decides what each column is (id, time, excluded, constant, categorical, numeric, and
which numeric columns carry sentinel codes) and says so in a small report dict; `TablePreparer`
learns those roles on fit and applies them identically on every later transform. `probable_leaks`
finds columns that alone separate the classes (the target in disguise), which training leaves out;
`TrainingInputError` says what is wrong with a table that cannot train as given.

Protected attributes (sex, marital status, race, ethnicity, religion, nationality, date of birth)
never reach a model. Age is the one exception, on the terms of US Regulation B (12 CFR
1002.6(b)(2)(ii)): an empirically derived, statistically sound scoring system may use an
applicant's age provided an elderly applicant is never assigned a negative value. A numeric age
column is therefore kept only with a monotone constraint (`AGE_CONSTRAINT`: risk never rises
with age), reported in `monotone_`; `drop_protected=True` with `allow_age=False` drops it too.
"""

from __future__ import annotations

import re
import warnings
from difflib import get_close_matches
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from models.names import AMBIGUOUS_HINT, ambiguity
from models.validation import auc, is_binary

SPECIAL_SUFFIX = "_special"
LEAK_AUC = 0.999  # one column this separating is the target in disguise: real drivers reach 0.8
MIN_LEVEL_ROWS = 10  # rarer categories share one default rate in the leak screen
SHOWN_VALUES = 6  # distinct values named in an error
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


class TrainingInputError(ValueError):
    """A table that cannot train a model as given: why, the column (``field``) and what to do.

    `pipelines.errors` turns it into a bad-input error with the same place and hint.
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        hint: str | None = None,
        source: str | None = None,
    ):
        self.reason, self.field, self.hint, self.source = reason, field, hint, source
        place = f"{field!r}: " if field else ""
        super().__init__(f"{place}{reason}" + (f"; {hint}" if hint else ""))


def _columns_hint(column: str, columns) -> str:
    """What the table does hold: the closest column name, then the first few names."""
    names = [str(c) for c in columns]
    close = get_close_matches(str(column), names, n=1)
    shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    if close:
        return f"did you mean {close[0]!r}? The columns are {shown}"
    return f"the columns are {shown or 'none'}"


def check_roles(
    columns, target: str, id: str | None = None, time: str | None = None, exclude=()
) -> None:
    """Each column has one name (see `models.names`), every column named for a role is in the
    table, and the target has no other role."""
    ambiguous = ambiguity(columns)
    if ambiguous:
        raise TrainingInputError(ambiguous, hint=AMBIGUOUS_HINT)
    named = [("target", target), ("id", id), ("time", time), *(("excluded", c) for c in exclude)]
    for role, column in named:
        if column is None:
            continue
        if column not in columns:
            raise TrainingInputError(
                f"the {role} column is not in the table",
                field=str(column),
                hint=_columns_hint(column, columns),
            )
        if role != "target" and column == target:
            raise TrainingInputError(
                f"the target cannot also be the {role} column", field=str(column)
            )


def _values_found(values: pd.Series) -> str:
    """The distinct values of a column with their row counts, the most frequent first."""
    counts = values.value_counts(dropna=False)
    shown = [f"{v!r} ({n:,} rows)" for v, n in counts.head(SHOWN_VALUES).items()]
    more = len(counts) - SHOWN_VALUES
    return ", ".join(shown) + (f" and {more:,} more distinct values" if more > 0 else "")


def _some(values: pd.Series) -> str:
    """The first three values, numbers to four significant digits."""
    return ", ".join(f"{v:.4g}" if isinstance(v, float) else repr(v) for v in values.iloc[:3])


def binary_target(values: pd.Series, name: str) -> np.ndarray:
    """The target as 0/1 floats (1 = default) from 0/1, 0.0/1.0 or true/false values; any other
    value (yes/no, 1/2, 0/1/2, text) is refused, naming the values found."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if is_binary(numbers):
        return numbers
    raise TrainingInputError(
        f"the target must be 0/1 (1 = default) or true/false; its values are "
        f"{_values_found(values)}",
        field=str(name),
        hint="recode it to 1 for a default and 0 otherwise",
    )


def check_dates(values: pd.Series, name: str) -> None:
    """Refuse a time column that is not dates: numbers, text that does not parse, missing dates."""
    if pd.api.types.is_datetime64_any_dtype(values):
        dates = values
    elif _is_number(values):
        raise TrainingInputError(
            f"the time column holds numbers, not dates (such as {_some(values)})",
            field=str(name),
            hint="give a column of dates (YYYY-MM-DD), or train without one (stratified split)",
        )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
            dates = pd.to_datetime(values, errors="coerce")
    bad = dates.isna().to_numpy()
    if bad.any():
        given = values[bad & values.notna().to_numpy()]
        reason = (
            f"{len(given):,} values are not dates, such as {_some(given)}"
            if len(given)
            else f"{int(bad.sum()):,} rows have no date"
        )
        raise TrainingInputError(
            f"the time column is not a date column: {reason}",
            field=str(name),
            hint="give dates (YYYY-MM-DD) in every row, or train without a time column",
        )


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
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return []
    below = x[x < 0]
    if below.size:
        if below.size > 0.5 * x.size or not np.array_equal(below, np.round(below)):
            return []
        negatives = np.unique(below)
        return [float(v) for v in negatives] if negatives.size <= MAX_NEGATIVE_CODES else []
    if x.max() < 96:
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
    if isinstance(s.dtype, pd.CategoricalDtype):  # one str() per category, not per row
        names = np.array([str(c) for c in s.cat.categories] + [None], dtype=object)
        return pd.Series(names[s.cat.codes.to_numpy()], index=s.index, dtype=object)
    return s.astype(object).where(s.notna(), None).map(text_of)


def text_of(value: Any) -> str | None:
    """One value as `_as_text` spells it: a Python string, None where missing."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    return None if pd.api.types.is_scalar(value) and pd.isna(value) else str(value)


def _seen_text(s: pd.Series) -> list[str]:
    """The distinct values of a text column, as `_as_text` spells them, sorted."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        used = np.unique(s.cat.codes.to_numpy())
        return sorted({str(s.cat.categories[i]) for i in used if i >= 0})
    return sorted(_as_text(s).dropna().unique())


def _to_categorical(s: pd.Series, dtype: pd.CategoricalDtype) -> pd.Categorical:
    """`s` as text on the fitted categories; unseen values become missing."""
    if isinstance(s.dtype, pd.CategoricalDtype):  # recode category codes, no per-row text
        lookup = dtype.categories.get_indexer([str(c) for c in s.cat.categories])
        codes = np.append(lookup, -1)[s.cat.codes.to_numpy()]
        return pd.Categorical.from_codes(codes, dtype=dtype)
    return pd.Categorical(_as_text(s), dtype=dtype)


def _is_constant(s: pd.Series) -> bool:
    """One value in every row (missing counts as a value)."""
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return s.nunique(dropna=False) <= 1
    v = s.to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(v)
    if missing.any():
        return bool(missing.all())
    return v.size == 0 or v.min() == v.max()


def _is_number(s: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s)


def is_text(s: pd.Series) -> bool:
    """Text-like column (category, object or string dtype): a categorical feature."""
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
    leaks: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """Decide each column's role and report it.

    Protected attributes (by name, see `PROTECTED_ATTRIBUTES`) are dropped unless
    `drop_protected=False`: the project keeps them out of models. A numeric age column is kept
    under the age constraint (see the module docstring) unless `allow_age=False`. ``leaks``
    (found by `probable_leaks`) are dropped as probable leaks of the target.
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
    for col in leaks:
        report["dropped"][col] = "probable leak of the target"
        taken.add(col)
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
        elif _is_constant(s):
            report["dropped"][col] = "constant"
        elif drop_protected and _name_key(col) in AGE_ATTRIBUTES and not _is_number(s):
            report["dropped"][col] = "protected attribute (age, not numeric: cannot be constrained)"
        elif is_text(s):
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
    time, excluded, constant, protected-attribute and ``leaks`` columns are dropped. With
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
        leaks: tuple[str, ...] = (),
    ):
        self.target = target
        self.id = id
        self.time = time
        self.exclude = exclude
        self.special_indicators = special_indicators
        self.drop_protected = drop_protected
        self.sentinels_to_nan = sentinels_to_nan
        self.allow_age = allow_age
        self.leaks = leaks

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
            tuple(self.leaks),
        )
        self.sentinels_ = dict(self.report_["sentinels"])
        self.categories_ = {c: _seen_text(X[c]) for c in self.report_["categorical"]}
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
        numeric = [c for c in self.input_columns_ if c not in self.categories_]
        names = [*numeric, *(c + SPECIAL_SUFFIX for c in self.specials_)]
        # One column-major float block: the frame wraps it without a consolidating copy.
        block = np.empty((len(X), len(names)), dtype=float, order="F")
        for j, col in enumerate(numeric):
            v = pd.to_numeric(X[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            codes = self.sentinels_.get(col) if self.sentinels_to_nan else None
            if codes:
                is_code = np.isin(v, codes)
                if col in self.specials_:
                    k = len(numeric) + self.specials_.index(col)
                    block[:, k] = np.where(is_code, v, np.nan)
                v = np.where(is_code, np.nan, v)
            block[:, j] = v
        out = pd.DataFrame(block, index=X.index, columns=names, copy=False)
        for col in self.categories_:
            values = _to_categorical(X[col], pd.CategoricalDtype(self.categories_[col]))
            out.insert(self.input_columns_.index(col), col, values)
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.feature_names_, dtype=object)


def _ranked(s: pd.Series, y: np.ndarray) -> np.ndarray:
    """A prepared column as ranks whose order the leak screen tests: values (missing below all of
    them, infinite ones at the ends); categories (missing one of them) by their default rate,
    rare ones tied."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy() + 1
        rows = np.bincount(codes)
        rate = np.bincount(codes, y) / np.maximum(rows, 1)
        rate[rows < MIN_LEVEL_ROWS] = y.mean()
        return rate[codes]
    v = s.to_numpy(dtype=float, na_value=np.nan)
    return np.unique(np.where(np.isnan(v), -np.inf, v), return_inverse=True)[1].astype(float)


def single_feature_auc(X: pd.DataFrame, y: np.ndarray) -> pd.Series:
    """Each prepared column's AUC alone, on rows whose 0/1 labels are ``y`` (both classes)."""
    y = np.asarray(y, dtype=float)
    return pd.Series({c: auc(y, _ranked(X[c], y)) for c in X.columns}, dtype=float)


def probable_leaks(X: pd.DataFrame, y: np.ndarray, threshold: float = LEAK_AUC) -> dict[str, float]:
    """Raw columns of which a prepared column alone separates the classes almost perfectly (AUC at
    least ``threshold`` or at most 1 - ``threshold``): a copy, a multiple or a counter sorted by
    the target, not a risk driver; column -> AUC. A `<col>_special` column points at ``col``."""
    aucs = single_feature_auc(X, y)
    found = aucs[(aucs - 0.5).abs() >= threshold - 0.5]
    return {_raw_column(str(c), X.columns): float(a) for c, a in found.items()}


def _raw_column(name: str, columns: pd.Index) -> str:
    base = name.removesuffix(SPECIAL_SUFFIX)
    return base if base != name and base in columns else name
