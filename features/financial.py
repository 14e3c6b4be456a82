"""Financial ratios from the latest statement published before ``as_of`` and their change on the
statement of about one year earlier (period end 12 months before, +-2 months, also published
before ``as_of``). Division by zero gives NaN, never inf.

A period may have several versions (restatements, keyed by published_on): each period counts
with its latest version published before ``as_of``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.customer import known_rows
from features.repayment import month_index, safe_divide

PRIOR_YEAR_MONTHS = 12
PRIOR_YEAR_TOLERANCE = 2
RATIOS = (
    "leverage",
    "current_ratio",
    "quick_ratio",
    "interest_coverage",
    "ebit_margin",
    "net_margin",
    "return_on_assets",
)
AMOUNTS = (  # the statement columns the features read
    "revenue",
    "ebit",
    "interest_expense",
    "net_income",
    "total_assets",
    "total_liabilities",
    "current_assets",
    "current_liabilities",
    "cash",
    "inventory",
)
_KEY = 1 << 20  # month indexes stay far below this
_DAY_BITS = 18  # 2**18 days span more than the contract's dates (1678..2261)


def ratios(s) -> dict[str, np.ndarray]:
    """The catalog ratios of each statement row (``s``: a frame, or columns by name)."""

    def col(name: str) -> np.ndarray:
        if name not in s:
            return np.full(len(s["period_end"]), np.nan)
        return floats(s[name])

    inventory = col("inventory")
    quick = np.where(
        np.isnan(inventory),
        safe_divide(col("cash"), col("current_liabilities")),
        safe_divide(col("current_assets") - inventory, col("current_liabilities")),
    )
    return {
        "leverage": safe_divide(col("total_liabilities"), col("total_assets")),
        "current_ratio": safe_divide(col("current_assets"), col("current_liabilities")),
        "quick_ratio": quick,
        "interest_coverage": safe_divide(col("ebit"), col("interest_expense")),
        "ebit_margin": safe_divide(col("ebit"), col("revenue")),
        "net_margin": safe_divide(col("net_income"), col("revenue")),
        "return_on_assets": safe_divide(col("net_income"), col("total_assets")),
    }


def floats(values) -> np.ndarray:
    """A column (Series or array) as float64, missing values as NaN."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float)


def _prior_year(keys: np.ndarray, latest: np.ndarray) -> np.ndarray:
    """Row of the statement nearest to 12 months before each latest one (-1 if none in +-2)."""
    found = np.full(len(latest), -1)
    target = keys[latest] - PRIOR_YEAR_MONTHS
    for offset in (0, -1, 1, -2, 2)[: 2 * PRIOR_YEAR_TOLERANCE + 1]:
        pos = np.searchsorted(keys, target + offset)
        hit = (pos < len(keys)) & (found < 0)
        hit[hit] = keys[pos[hit]] == target[hit] + offset
        found[hit] = pos[hit]
        if found.min(initial=0) >= 0:  # every one found: the wider offsets would find none
            break
    return found


def latest_versions(
    period_end, published_on, code: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The latest published version of each (customer, period_end), by customer and period.

    Returns the positions of those rows, their customer codes and their period ends (days,
    datetime64[D]).
    """
    period, published = _days(period_end), _days(published_on)
    dated = period != np.iinfo(np.int64).min  # a row without a period end is no version
    low = min(np.min(period, where=dated, initial=0), published.min(initial=0))
    version = (code.astype(np.int64) << 2 * _DAY_BITS) | ((period - low) << _DAY_BITS)
    order = np.argsort(version | (published - low), kind="stable")
    order = order[dated[order]]
    code, period = code[order], period[order]
    last = np.ones(len(code), dtype=bool)
    last[:-1] = (code[1:] != code[:-1]) | (period[1:] != period[:-1])
    return order[last], code[last], period[last].astype("datetime64[D]")


def _days(dates) -> np.ndarray:
    values = np.asarray(dates)
    if values.dtype.kind != "M":
        values = np.asarray(pd.to_datetime(values))
    return values.astype("datetime64[D]").view(np.int64)


def financial_features(
    statements: pd.DataFrame, customer_ids: pd.Series, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Financial features of ``customer_ids`` (same order); NaN for customers without statements."""
    known, code = known_rows(statements, "published_on", customer_ids, as_of)
    columns = {name: known[name] for name in known.columns if name != "customer_id"}
    features = statement_features(columns, code, len(customer_ids), as_of)
    return pd.DataFrame(features, index=customer_ids.index)


def statement_features(
    columns, code: np.ndarray, n: int, as_of: pd.Timestamp
) -> dict[str, np.ndarray]:
    """Financial features of ``n`` customers from the statements known at ``as_of`` (columns by
    name, Series or arrays) and each statement's customer position ``code``."""
    order, code, period_end = latest_versions(columns["period_end"], columns["published_on"], code)
    known = {name: floats(columns[name])[order] for name in AMOUNTS if name in columns}
    known["period_end"] = period_end
    keys = code.astype(np.int64) * _KEY + month_index(period_end)
    latest = np.flatnonzero(np.append(code[1:] != code[:-1], True)) if len(code) else code
    prior = _prior_year(keys, latest)
    prior_row = np.where(prior >= 0, prior, 0)  # row 0 stands in for none; scatter masks it

    values = ratios(known)
    owner = code[latest]
    out: dict[str, np.ndarray] = {}

    def scatter(rows_values: np.ndarray, rows: np.ndarray = latest) -> np.ndarray:
        full = np.full(n, np.nan)
        full[owner] = np.where(rows >= 0, rows_values, np.nan)
        return full

    for name in RATIOS:
        out[name] = scatter(values[name][latest])
    for name in RATIOS:
        change = values[name][latest] - values[name][prior_row]
        out[f"{name}_change_1y"] = scatter(change, prior)
    revenue = known["revenue"]
    assets = known["total_assets"][latest]
    growth = safe_divide(revenue[latest], revenue[prior_row]) - 1.0
    out["revenue_growth_1y"] = scatter(growth, prior)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_total_assets"] = scatter(np.where(assets > 0, np.log(assets), np.nan))
    age = (np.datetime64(as_of) - period_end[latest]) / np.timedelta64(1, "D")
    out["statement_age_days"] = scatter(np.asarray(age, dtype=float))
    out["revenue_latest"] = scatter(revenue[latest])
    return out
