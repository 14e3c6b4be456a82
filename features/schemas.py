"""The canonical data contract: pandera schemas per table and ``validate_tables``.

Validation never drops a row silently: every row is either accepted or written to the rejects
table with its table, key, column and reason, and ``rows_in = accepted + rejected`` per table.
Column types, nullability, ranges and allowed values are pandera schemas; type coercion,
cross-column, duplicate-key and cross-table checks are vectorised pandas (pandera's per-row
checks would be slower on million-row repayment tables).

Sign conventions: limits, revenue, interest expense, assets, liabilities, cash, inventory,
amount due and amount paid are >= 0; ``balance`` may be negative (a credit balance after an
overpayment); ``ebit``, ``net_income`` and ``equity`` may be negative. Financial statement
amounts may be missing (an unreported item becomes a missing feature, not a rejected statement).
Keys: an exact copy of an accepted row is rejected as a duplicate; rows that share a key but differ
are all rejected (which one is right is unknowable). A statement version is keyed by
(customer_id, period_end, published_on): a restatement (a later published_on) is accepted beside
the original, and features pick the version known at the as-of date. Events have no key.
Optional columns (founded_on, inventory) are added empty when absent. Child rows whose customer
is unknown or was rejected are rejected. Dates after ``reference_date`` are rejected only when
one is given.

Dates are ISO 8601 text or typed dates; a time zone (``+05:00``, ``Z``, a tz-aware Parquet
column, zones mixed in one column) is dropped and the local calendar date kept, never converted
to UTC (see `_to_date`); a value that is no date is rejected row by row. Ids and codes are text:
an empty or all-space value is missing, any other spelling (``NA``, ``NULL``, ``None``) is an id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from features.customer import SEGMENTS

EVENT_TYPES = ("lawsuit", "enforcement", "complaint", "negative_news", "restructuring")
TABLES = ("customers", "financial_statements", "repayments", "events", "defaults")
KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "financial_statements": ("customer_id", "period_end", "published_on"),
    "repayments": ("customer_id", "month"),
    "events": ("customer_id", "occurred_on", "type"),
    "defaults": ("customer_id", "defaulted_on"),
}
UNIQUE_KEY_TABLES = ("customers", "financial_statements", "repayments", "defaults")
DATE = "datetime64[ns]"
REJECT_COLUMNS = ["table", "key", "column", "reason"]
COUNT_COLUMNS = ["table", "rows_in", "accepted", "rejected"]
MAX_REJECT_RATE_ENV = "CREDITRISK_MAX_REJECT_RATE"


def _text(nullable: bool = False, *checks: pa.Check, required: bool = True) -> pa.Column:
    return pa.Column(str, list(checks), nullable=nullable, required=required)


def _date(nullable: bool = False, *checks: pa.Check, required: bool = True) -> pa.Column:
    return pa.Column(DATE, list(checks), nullable=nullable, required=required)


def _amount(nonnegative: bool = True, nullable: bool = False, required: bool = True) -> pa.Column:
    checks = [pa.Check.ge(0, error="negative amount: must be >= 0")] if nonnegative else []
    return pa.Column(float, checks, nullable=nullable, required=required)


def _is_text(col: pa.Column) -> bool:
    """Ids and codes: every column that is neither a date nor a number."""
    return str(col.dtype) not in (DATE, "float64", "int64")


def _one_of(values: tuple[str, ...]) -> pa.Check:
    return pa.Check.isin(values, error=f"invalid value: must be one of {', '.join(values)}")


_FIRST_OF_MONTH = pa.Check(
    lambda s: s.dt.day == 1, error="month must be the first day of the month (e.g. 2023-01-01)"
)

SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "customers": pa.DataFrameSchema(
        {
            "customer_id": _text(),
            "segment": _text(False, _one_of(SEGMENTS)),
            "industry": _text(),
            "region": _text(),
            "onboarded_on": _date(),
            "founded_on": _date(True, required=False),
        },
        name="customers",
    ),
    "financial_statements": pa.DataFrameSchema(
        {
            "customer_id": _text(),
            "period_end": _date(),
            "published_on": _date(),
            "revenue": _amount(nullable=True),
            "ebit": _amount(nonnegative=False, nullable=True),
            "interest_expense": _amount(nullable=True),
            "net_income": _amount(nonnegative=False, nullable=True),
            "total_assets": _amount(nullable=True),
            "total_liabilities": _amount(nullable=True),
            "current_assets": _amount(nullable=True),
            "current_liabilities": _amount(nullable=True),
            "cash": _amount(nullable=True),
            "equity": _amount(nonnegative=False, nullable=True),
            "inventory": _amount(nullable=True, required=False),
        },
        name="financial_statements",
    ),
    "repayments": pa.DataFrameSchema(
        {
            "customer_id": _text(),
            "month": _date(False, _FIRST_OF_MONTH),
            "credit_limit": _amount(),
            "balance": _amount(nonnegative=False),
            "amount_due": _amount(nullable=True),
            "amount_paid": _amount(),
            "days_past_due": pa.Column(
                "int64", pa.Check.ge(0, error="days_past_due must be >= 0"), nullable=False
            ),
        },
        name="repayments",
    ),
    "events": pa.DataFrameSchema(
        {
            "customer_id": _text(),
            "occurred_on": _date(),
            "type": _text(False, _one_of(EVENT_TYPES)),
            "severity": pa.Column(
                "int64", pa.Check.in_range(1, 3, error="severity must be 1, 2 or 3"), nullable=False
            ),
        },
        name="events",
    ),
    "defaults": pa.DataFrameSchema(
        {"customer_id": _text(), "defaulted_on": _date(), "reason": _text(True)},
        name="defaults",
    ),
}

# Columns read as text (ids and codes): a CSV keeps every spelling of them, `NA` included.
TEXT_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(
        c for schema in SCHEMAS.values() for c, col in schema.columns.items() if _is_text(col)
    )
)
# The financial statement amounts (revenue ... inventory): every number column, in schema order.
STATEMENT_AMOUNTS: tuple[str, ...] = tuple(
    c for c, col in SCHEMAS["financial_statements"].columns.items() if str(col.dtype) == "float64"
)

# (later date, earlier date, reason): rows where later < earlier are rejected.
DATE_ORDER: dict[str, list[tuple[str, str, str]]] = {
    "customers": [("onboarded_on", "founded_on", "founded_on is after onboarded_on")],
    "financial_statements": [("published_on", "period_end", "published_on is before period_end")],
}


class ContractError(ValueError):
    """A whole table breaks the contract (missing table or columns); no row can be accepted."""


class RejectRateExceeded(RuntimeError):
    """Too many rows were rejected; the message says where the rejects are and what to do."""


@dataclass
class ValidationResult:
    """Accepted rows per table, the rejects (table, key, column, reason) and the counts."""

    accepted: dict[str, pd.DataFrame]
    rejects: pd.DataFrame
    counts: pd.DataFrame
    max_reject_rate: float = 0.05
    reject_rates: dict[str, float] = field(default_factory=dict)

    @property
    def exceeded(self) -> list[str]:
        """Tables whose reject rate is above ``max_reject_rate``."""
        return [t for t, rate in self.reject_rates.items() if rate > self.max_reject_rate]


def validate_tables(
    tables: dict[str, pd.DataFrame],
    max_reject_rate: float = 0.05,
    reference_date: pd.Timestamp | str | None = None,
) -> ValidationResult:
    """Coerce and check every canonical table; split rows into accepted and rejected.

    ``reference_date`` (optional) rejects rows dated after it. Raises ``ContractError`` when the
    customers table or a required column is missing. Extra columns pass through unchecked.
    """
    if not 0 <= max_reject_rate <= 1:
        raise ValueError(f"max_reject_rate must be between 0 and 1, got {max_reject_rate}")
    _check_contract(tables)
    reference = None if reference_date is None else pd.Timestamp(reference_date).normalize()
    accepted: dict[str, pd.DataFrame] = {}
    rejects: list[pd.DataFrame] = []
    counts: list[tuple[str, int, int, int]] = []
    for name in (t for t in TABLES if t in tables):
        raw = tables[name].reset_index(drop=True)
        parent_ids = None
        if name != "customers":
            parent_ids = (accepted["customers"]["customer_id"], tables["customers"]["customer_id"])
        good, table_rejects = _validate_table(name, raw, reference, parent_ids)
        n_rejected = len(raw) - len(good)
        assert n_rejected == table_rejects["row"].nunique(), f"{name}: rows do not reconcile"
        assert len(raw) == len(good) + n_rejected
        accepted[name] = good
        rejects.append(_render_keys(name, raw, table_rejects))
        counts.append((name, len(raw), len(good), n_rejected))
    counts_df = pd.DataFrame(counts, columns=COUNT_COLUMNS)
    rates = {t: (r / n if n else 0.0) for t, n, _, r in counts}
    rejects_df = pd.concat(rejects, ignore_index=True) if rejects else _empty_rejects()
    return ValidationResult(accepted, rejects_df, counts_df, max_reject_rate, rates)


def enforce_reject_rate(
    result: ValidationResult, max_rate: float | None = None, rejects_path: str | None = None
) -> None:
    """Raise ``RejectRateExceeded`` when any table rejects more than ``max_rate`` of its rows."""
    limit = result.max_reject_rate if max_rate is None else max_rate
    over = [t for t, rate in result.reject_rates.items() if rate > limit]
    if not over:
        return
    counts = result.counts.set_index("table")
    lines = [
        f"  {t}: {counts.at[t, 'rejected']:,} of {counts.at[t, 'rows_in']:,} rows rejected "
        f"({result.reject_rates[t]:.1%})"
        for t in over
    ]
    where = (
        f"The rejected rows and reasons are in {rejects_path}."
        if rejects_path
        else ("The rejected rows and reasons are in ValidationResult.rejects.")
    )
    raise RejectRateExceeded(
        f"Reject rate above the threshold of {limit:.1%}:\n"
        + "\n".join(lines)
        + f"\n{where}\nFix the input data, or raise the threshold with --max-reject-rate 0.10 "
        f"or the environment variable {MAX_REJECT_RATE_ENV}=0.10."
    )


def _check_contract(tables: dict[str, pd.DataFrame]) -> None:
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ContractError(
            f"unknown table(s) {', '.join(unknown)}: the canonical tables are {', '.join(TABLES)}. "
            "Rename the table or leave it out."
        )
    if "customers" not in tables:
        raise ContractError(
            "the customers table is missing: every book needs customers "
            "(customer_id, segment, industry, region, onboarded_on)."
        )
    problems = []
    for name, df in tables.items():
        required = [c for c, col in SCHEMAS[name].columns.items() if col.required]
        missing = [c for c in required if c not in df.columns]
        if missing:
            problems.append(f"table '{name}' is missing column(s): {', '.join(missing)}")
    if problems:
        raise ContractError(
            "; ".join(problems)
            + ". Add the column(s) or rename the source columns to the canonical names "
            "(see features/schemas.py)."
        )


def _validate_table(
    name: str,
    raw: pd.DataFrame,
    reference: pd.Timestamp | None,
    parent_ids: tuple[pd.Series, pd.Series] | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    schema = SCHEMAS[name]
    df, found = _coerce(raw, schema)
    bad = _rows(found, len(raw))
    found.append(_schema_failures(_cast_whole(df.loc[~bad], schema), schema))
    found.append(_date_order(df, name))
    if reference is not None:
        found.append(_future_dates(df, schema, reference))
    if parent_ids is not None:
        found.append(_unknown_customers(df, *parent_ids))
    bad = _rows(found, len(raw))
    found.append(_duplicates(df, name, bad))
    bad = _rows(found, len(raw))
    good = _cast_whole(df.loc[~bad], schema).reset_index(drop=True)
    rejects = pd.concat(found, ignore_index=True) if found else _empty_found()
    return good, rejects


def _cast_whole(df: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    whole = [c for c, col in schema.columns.items() if str(col.dtype) == "int64"]
    return df.astype(dict.fromkeys(whole, "int64")) if whole else df


def _coerce(raw: pd.DataFrame, schema: pa.DataFrameSchema) -> tuple[pd.DataFrame, list]:
    """Cast columns to the schema's types; values that fail the cast or are missing are found."""
    df = raw.copy(deep=False)
    found: list[pd.DataFrame] = []
    for column, col in schema.columns.items():
        if column not in df.columns:
            df[column] = pd.Series(np.nan, index=df.index, dtype=str(col.dtype))
            continue
        kind = str(col.dtype)
        before = _blank_as_missing(df[column]) if _is_text(col) else df[column]
        if kind == DATE:
            after, reason = _to_date(before), "not a date (expected YYYY-MM-DD, 1678..2261)"
        elif kind in ("float64", "int64"):
            after, reason = _to_number(before), "not a number"
        else:
            after, reason = _to_text(before), "not text"
        failed = before.notna() & after.isna()
        if kind in ("float64", "int64"):
            infinite = after.notna() & ~np.isfinite(after.to_numpy(dtype=float, na_value=np.nan))
            found.append(_found(infinite, column, "not a finite number"))
            after = after.mask(infinite)
        if kind == "int64":
            fractional = after.notna() & (after != np.floor(after))
            found.append(_found(fractional, column, "not a whole number"))
            after = after.mask(fractional)
        found.append(_found(failed, column, reason))
        if not col.nullable:
            found.append(_found(before.isna(), column, "missing value"))
        df[column] = after
    return df, found


def _to_date(s: pd.Series) -> pd.Series:
    """Parse ISO dates to the local calendar date; dates outside 1678..2261 become missing.

    A time zone is dropped, never converted: ``2021-01-01T00:00:00+05:00``, ``...T23:30:00Z``
    and a tz-aware Parquet value all give the date written, 2021-01-01 (the source system's own
    calendar day). Converting to UTC would move a month start east of Greenwich to the last
    day of the month before, and a statement published on the 1st to the 31st.
    """
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(_date_text(s), errors="coerce", format="ISO8601")
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    inside = (s >= pd.Timestamp.min) & (s <= pd.Timestamp.max)
    return s.where(inside).dt.normalize().astype(DATE)


# A date, optionally with a time, then a time zone (ISO 8601): Z, +05:00, -0330 or +05. The
# zone is cut off and the date (and time) kept as written.
_TZ_SUFFIX = (
    r"^\s*(\d{4}-?\d{2}-?\d{2}(?:[T\s]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?)?)"
    r"\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"
)


def _date_text(s: pd.Series) -> pd.Series:
    """Dates as ISO text without a time-zone suffix; whole numbers (20230101) as digits."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return _whole_numbers(s).astype("str")
    text = s.astype(object).where(s.notna()).astype("str")
    return text.str.replace(_TZ_SUFFIX, r"\1", regex=True)


def _whole_numbers(s: pd.Series) -> pd.Series:
    """``s`` as nullable integers; fractions, infinities and missing values become missing."""
    values = s.astype("float64")
    whole = np.isfinite(values) & (values == np.floor(values)) & (values.abs() < 2**63)
    return values.where(whole).astype("Int64")


def _to_number(s: pd.Series) -> pd.Series:
    """Numbers as floats; booleans, dates and durations are not numbers."""
    if s.dtype.kind in "bmM":
        return pd.Series(np.nan, index=s.index)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype("float64")
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _to_text(s: pd.Series) -> pd.Series:
    """Ids and codes as text; whole floats (1.0 from a numeric column) lose their ``.0``."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if pd.api.types.is_float_dtype(s.dtype):
        whole = _whole_numbers(s)
        if whole.notna().sum() == s.notna().sum():
            s = whole
    return s.astype("str")


def _blank_as_missing(s: pd.Series) -> pd.Series:
    """An empty or all-space id or code is missing, as an empty CSV field is."""
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s
    blank = s.astype("str").str.strip().eq("").to_numpy(dtype=bool, na_value=False)
    return s.mask(blank) if blank.any() else s


def _schema_failures(df: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        if cases["index"].isna().any():
            msg = f"coercion left a column-level failure: {cases.to_dict('records')}"
            raise RuntimeError(msg) from err
        return pd.DataFrame(
            {
                "row": cases["index"].astype("int64").to_numpy(),
                "column": cases["column"].astype(str).to_numpy(),
                "reason": cases["check"].astype(str).to_numpy(),
            }
        )
    return _empty_found()


def _date_order(df: pd.DataFrame, name: str) -> pd.DataFrame:
    out = [
        _found(df[later] < df[earlier], earlier, reason)
        for later, earlier, reason in DATE_ORDER.get(name, [])
    ]
    return pd.concat(out, ignore_index=True) if out else _empty_found()


def _future_dates(df: pd.DataFrame, schema: pa.DataFrameSchema, ref: pd.Timestamp) -> pd.DataFrame:
    dates = [c for c, col in schema.columns.items() if str(col.dtype) == DATE]
    reason = f"date is after the reference date {ref:%Y-%m-%d}"
    out = [_found(df[c] > ref, c, reason) for c in dates]
    return pd.concat(out, ignore_index=True) if out else _empty_found()


def _unknown_customers(df: pd.DataFrame, accepted: pd.Series, raw: pd.Series) -> pd.DataFrame:
    ids = df["customer_id"]
    known = _isin(ids, accepted)
    listed = _isin(ids, raw)
    return pd.concat(
        [
            _found(ids.notna() & ~listed, "customer_id", "unknown customer: not in customers"),
            _found(listed & ~known, "customer_id", "customer was rejected in customers"),
        ],
        ignore_index=True,
    )


def _isin(values: pd.Series, allowed: pd.Series) -> pd.Series:
    """``values.isin(allowed)`` for text ids through Arrow (pandas' str isin loops in Python)."""
    value_set = pa_arrow.array(_to_text(allowed).dropna().unique(), type=pa_arrow.large_string())
    array = pa_arrow.array(values, type=pa_arrow.large_string(), from_pandas=True)
    found = pc.is_in(array, value_set=value_set).fill_null(False)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index)


def _duplicates(df: pd.DataFrame, name: str, bad: pd.Series) -> pd.DataFrame:
    """Exact copies after the first are rejected; all rows sharing a key with other values are.

    Events have no key (two complaints on one day are possible), so they are not checked.
    """
    if name not in UNIQUE_KEY_TABLES:
        return _empty_found()
    rows = df.loc[~bad]
    copies = rows.duplicated(keep="first")
    distinct = rows.loc[~copies]
    clash = distinct.duplicated(subset=list(KEYS[name]), keep=False)
    return pd.concat(
        [
            _found(copies.reindex(df.index, fill_value=False), "*", "duplicate row"),
            _found(
                clash.reindex(df.index, fill_value=False),
                ",".join(KEYS[name]),
                "conflicting rows share this key",
            ),
        ],
        ignore_index=True,
    )


def _found(mask: pd.Series, column: str, reason: str) -> pd.DataFrame:
    rows = np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))
    return pd.DataFrame({"row": rows, "column": column, "reason": reason})


def _rows(found: list[pd.DataFrame], n: int) -> pd.Series:
    """Boolean mask over the table's rows: True where any check found a problem."""
    mask = np.zeros(n, dtype=bool)
    for f in found:
        mask[f["row"].to_numpy(dtype="int64")] = True
    return pd.Series(mask)


def _empty_found() -> pd.DataFrame:
    return pd.DataFrame({"row": pd.Series(dtype="int64"), "column": "", "reason": ""}).iloc[:0]


def _empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="str") for c in REJECT_COLUMNS})


def _render_keys(name: str, raw: pd.DataFrame, found: pd.DataFrame) -> pd.DataFrame:
    """Turn row positions into readable keys like ``customer_id=C0000001, month=2023-01-01``."""
    if found.empty:
        return _empty_rejects()
    found = found.drop_duplicates().sort_values(["row", "column"], kind="stable")
    rows = found["row"].to_numpy()
    parts = []
    for column in KEYS[name]:
        values = raw[column].iloc[rows] if column in raw.columns else pd.Series([None] * len(rows))
        parts.append(column + "=" + _show(values))
    key = parts[0]
    for part in parts[1:]:
        key = key + ", " + part
    if name == "events":
        key = key + ", row=" + pd.Series(rows).astype("str")
    return pd.DataFrame(
        {
            "table": name,
            "key": key.to_numpy(),
            "column": found["column"].to_numpy(),
            "reason": found["reason"].to_numpy(),
        }
    )


def _show(values: pd.Series) -> pd.Series:
    """Key values as text: dates as YYYY-MM-DD, missing as ``<missing>``."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        text = values.dt.strftime("%Y-%m-%d")
    else:
        text = values.astype(object).astype("str")
    return text.where(values.notna(), "<missing>").reset_index(drop=True)
