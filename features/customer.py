"""Customer attributes (segment, industry, region, tenure, company age) and customer-id codes."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SEGMENTS = ("corporate", "sme", "retail")
DAYS_PER_YEAR = 365.25


def customer_codes(ids: pd.Series, population: pd.Series) -> np.ndarray:
    """Position (int32) of each id in ``population``, -1 where absent: one Arrow hash lookup."""
    values = _arrow(ids)
    found = pc.index_in(values, value_set=_arrow(population).cast(values.type))
    return found.fill_null(-1).to_numpy(zero_copy_only=False)


def known_rows(
    table: pd.DataFrame, date_column: str, customer_ids: pd.Series, as_of: pd.Timestamp
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of ``customer_ids`` dated before ``as_of`` and each row's customer position."""
    known = table[(table[date_column] < as_of).to_numpy()]
    code = customer_codes(known["customer_id"], customer_ids)
    keep = code >= 0
    return known[keep], code[keep]


def _arrow(ids: pd.Series) -> pa.Array:
    if isinstance(ids.array, pd.arrays.ArrowStringArray):
        return pa.array(ids.array)
    return pa.array(ids.astype(str).to_numpy(), type=pa.string())


def category_levels(customers: pd.DataFrame) -> dict[str, list[str]]:
    """Category levels of the categorical attributes, fixed from a whole book (for partitions)."""
    levels = {"segment": list(SEGMENTS)}
    for column in ("industry", "region"):
        values = customers[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            levels[column] = [str(c) for c in values.cat.categories]
        else:
            levels[column] = sorted(set(values.dropna().astype(str).unique()))
    return levels


@functools.lru_cache(maxsize=256)
def months_before(day: pd.Timestamp, months: int) -> pd.Timestamp:
    """``day - pd.DateOffset(months=months)`` (the day clipped to the month's end), kept per
    argument: a service computes it for the same as-of dates on every call."""
    return day - pd.DateOffset(months=months)


def whole_months_between(start, end: pd.Timestamp) -> np.ndarray:
    """Completed calendar months from ``start`` (dates) to ``end`` (NaN where start is missing)."""
    days = _days(start)
    month = days.astype("datetime64[M]")
    months = (end.year * 12 + end.month - 1) - (month.astype(np.int64) + 1970 * 12)
    day = (days - month.astype("datetime64[D]")).astype(np.int64) + 1
    out = (months - (day > end.day)).astype(float)
    return np.where(np.isnat(days), np.nan, out)


def age_years(founded, as_of: pd.Timestamp) -> np.ndarray:
    """Years (of 365.25 days) from ``founded`` (dates) to ``as_of``; NaN where missing."""
    days = (np.datetime64(as_of, "D") - _days(founded)).astype("timedelta64[D]")
    return np.where(np.isnat(days), np.nan, days.astype(np.int64)) / DAYS_PER_YEAR


def _days(dates) -> np.ndarray:
    values = np.asarray(dates)
    if values.dtype.kind != "M":
        values = np.asarray(pd.to_datetime(values))
    return values.astype("datetime64[D]")


def customer_features(
    customers: pd.DataFrame, as_of: pd.Timestamp, levels: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """Segment, industry, region (category dtype), tenure in months and company age in years."""
    levels = levels or category_levels(customers)
    out = pd.DataFrame(index=customers.index)
    for column, cats in levels.items():
        out[column] = customers[column].astype(pd.CategoricalDtype(cats))
    out["tenure_months"] = whole_months_between(customers["onboarded_on"], as_of)
    out["company_age_years"] = age_years(customers["founded_on"], as_of)
    return out
