"""One customer's point-in-time features from its records as column arrays: `build_features` for
a book of one, by the same kernels, without a pandas frame on the way (a service request).

`feature_row(records, as_of, context)` equals the row of ``build_features`` of the customer's
tables at ``as_of`` with the same ``context`` (the parity tests hold it to that for every
customer of a book); the caller checks that the customer is performing (`default_date`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.build import ID, BookContext
from features.catalog import CATALOG
from features.customer import age_years, whole_months_between
from features.events import event_counts
from features.financial import statement_features
from features.labels import DEFAULT_DPD
from features.market import RATE
from features.repayment import SPAN, RepaymentMatrix, last_closed_month, matrix_features

Columns = dict[str, np.ndarray]
REPAYMENT_COLUMNS = ("days_past_due", "credit_limit", "balance", "amount_due", "amount_paid")


@dataclass(frozen=True)
class CustomerRecords:
    """One customer's raw data: its attributes (the customers row, dates as datetime64[D]) and
    its rows of each other table as the contract's columns (numpy arrays, no customer_id);
    None where the book has no such table."""

    customer: dict[str, Any]
    repayments: Columns
    financial_statements: Columns | None = None
    events: Columns | None = None
    defaults: Columns | None = None


def records_of(tables: dict[str, pd.DataFrame], customer_id: str) -> CustomerRecords:
    """One customer's records from a book's tables (tests and tools; the service builds them
    from a request)."""

    def rows(name: str) -> Columns | None:
        table = tables.get(name)
        if table is None:
            return None
        mine = table[(table[ID].astype(str) == customer_id).to_numpy()]
        return {c: _array(mine[c]) for c in mine.columns if c != ID}

    customers = tables["customers"]
    row = customers[(customers[ID].astype(str) == customer_id).to_numpy()]
    customer = {c: _array(row[c])[0] for c in row.columns}
    customer[ID] = customer_id
    return CustomerRecords(
        customer, rows("repayments"), rows("financial_statements"), rows("events"), rows("defaults")
    )


def _array(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.to_numpy().astype("datetime64[D]")
    if pd.api.types.is_float_dtype(values):
        return values.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy(dtype=np.int64)
    return values.astype(object).where(values.notna(), None).to_numpy()


def default_date(records: CustomerRecords) -> np.datetime64:
    """The customer's default date (`features.labels.default_dates` for one customer; NaT if
    none): its first ``defaulted_on`` when the book has a defaults table, else the close of its
    first month 90 or more days past due."""
    if records.defaults is not None:
        dates = records.defaults["defaulted_on"].astype("datetime64[D]")
        return dates.min() if len(dates) else np.datetime64("NaT", "D")
    months = records.repayments["month"][records.repayments["days_past_due"] >= DEFAULT_DPD]
    if not len(months):
        return np.datetime64("NaT", "D")
    return (months.astype("datetime64[M]").min() + 1).astype("datetime64[D]")


def feature_row(
    records: CustomerRecords, as_of: pd.Timestamp, context: BookContext
) -> dict[str, Any]:
    """The customer's catalog features at ``as_of`` by name, in the catalog's order: numbers as
    floats (NaN where missing), categories as text (None where missing or not a level)."""
    as_of = pd.Timestamp(as_of)
    customer = records.customer
    out: dict[str, Any] = {}
    for column, levels in context.category_levels.items():
        value = customer.get(column)
        out[column] = value if isinstance(value, str) and value in levels else None
    out["tenure_months"] = float(whole_months_between(_day(customer["onboarded_on"]), as_of)[0])
    out["company_age_years"] = float(age_years(_day(customer.get("founded_on")), as_of)[0])
    _scalars(out, matrix_features(repayment_matrix(records.repayments, as_of)))
    statements = records.financial_statements
    if statements is not None:
        known = statements["published_on"] < np.datetime64(as_of, "D")
        if known.any():
            columns = {name: values[known] for name, values in statements.items()}
            code = np.zeros(int(known.sum()), dtype=np.int64)
            _scalars(out, statement_features(columns, code, 1, as_of))
        else:
            out.update(_no_statement(tuple(statements)))
    events = records.events
    if events is not None:
        known = events["occurred_on"] < np.datetime64(as_of, "D")
        occurred = events["occurred_on"][known].astype("datetime64[ns]")
        kind = events["type"][known].astype(str)
        severity = events["severity"][known].astype(float)
        code = np.zeros(len(kind), dtype=np.int64)
        _scalars(out, event_counts(kind, occurred, severity, code, 1, as_of))
    out[RATE] = context.industry_rates.get(str(customer.get("industry")), np.nan)
    return {name: out[name] for name in CATALOG if name in out}


def repayment_matrix(repayments: Columns, as_of: pd.Timestamp, span: int = SPAN) -> RepaymentMatrix:
    """One customer's `features.repayment.repayment_matrix` (span x 1), typed as the batch's:
    float64 columns stay float64, narrower ones (ints) become float32."""
    first = last_closed_month(as_of) - span + 1
    column = repayments["month"].astype("datetime64[M]").astype(np.int64) - first
    keep = (column >= 0) & (column < span)
    column = column[keep]
    present = np.zeros((span, 1), dtype=bool)
    present[column, 0] = True

    def dense(name: str) -> np.ndarray:
        source = repayments[name]
        dtype = np.float64 if source.dtype == np.float64 else np.float32
        out = np.full((span, 1), np.nan, dtype=dtype)
        out[column, 0] = source[keep]
        return out

    return RepaymentMatrix(present, *(dense(name) for name in REPAYMENT_COLUMNS))


@functools.cache
def _no_statement(columns: tuple[str, ...]) -> dict[str, float]:
    """The statement features of a customer without a known statement (all missing), computed
    once per set of statement columns."""
    empty = {name: np.zeros(0) for name in columns}
    features = statement_features(empty, np.zeros(0, dtype=np.int64), 1, pd.Timestamp(0))
    return {name: float(values[0]) for name, values in features.items()}


def _day(value: Any) -> np.ndarray:
    return np.array([value if value is not None else "NaT"], dtype="datetime64[D]")


def _scalars(out: dict[str, Any], features: dict[str, np.ndarray]) -> None:
    for name, values in features.items():
        out[name] = float(values[0])
