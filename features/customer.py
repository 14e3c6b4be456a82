"""Customer attributes (segment, industry, region, tenure, company age) and customer-id codes."""

from __future__ import annotations

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


def whole_months_between(start: pd.Series, end: pd.Timestamp) -> np.ndarray:
    """Completed calendar months from ``start`` to ``end`` (NaN where start is missing)."""
    start = pd.to_datetime(start)
    months = (end.year - start.dt.year) * 12 + (end.month - start.dt.month)
    months = months - (start.dt.day > end.day).astype(float)
    return months.to_numpy(dtype=float, na_value=np.nan)


def customer_features(
    customers: pd.DataFrame, as_of: pd.Timestamp, levels: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """Segment, industry, region (category dtype), tenure in months and company age in years."""
    levels = levels or category_levels(customers)
    out = pd.DataFrame(index=customers.index)
    for column, cats in levels.items():
        out[column] = customers[column].astype(pd.CategoricalDtype(cats))
    out["tenure_months"] = whole_months_between(customers["onboarded_on"], as_of)
    founded = pd.to_datetime(customers["founded_on"])
    age_days = (as_of - founded).dt.days.to_numpy(dtype=float, na_value=np.nan)
    out["company_age_years"] = age_days / DAYS_PER_YEAR
    return out
