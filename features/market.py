"""Industry default rate known at ``as_of``: a small broadcast table computed from the whole book.

rate = customers of the industry that defaulted in (as_of - 12 months, as_of]
       / customers of the industry onboarded before as_of and not in default at the window start.
Only defaults known at ``as_of`` (defaulted_on <= as_of) count. NaN where the denominator is 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.labels import default_date_of, onboarded_before

WINDOW_MONTHS = 12
RATE = "industry_default_rate_12m"


def industry_default_rates(
    customers: pd.DataFrame, dates: pd.Series, as_of: pd.Timestamp
) -> pd.DataFrame:
    """One row per industry: customers at risk, defaults in the window, and the rate."""
    start = np.datetime64(as_of - pd.DateOffset(months=WINDOW_MONTHS))
    defaulted_on = default_date_of(customers["customer_id"], dates)
    at_risk = onboarded_before(customers, as_of) & ~(defaulted_on <= start)
    defaulted = at_risk & (defaulted_on > start) & (defaulted_on <= np.datetime64(as_of))
    frame = pd.DataFrame(
        {
            "industry": customers["industry"].astype(str).to_numpy(),
            "customers": at_risk.astype(float),
            "defaults": defaulted.astype(float),
        }
    )
    table = frame.groupby("industry", sort=True).sum()
    table[RATE] = table["defaults"] / table["customers"].where(table["customers"] > 0)
    return table


def market_features(customers: pd.DataFrame, rates: pd.DataFrame) -> pd.DataFrame:
    """Broadcast the industry rates onto customers (same order); NaN for unknown industries."""
    rate = customers["industry"].astype(str).map(rates[RATE])
    return pd.DataFrame({RATE: rate.to_numpy(dtype=float, na_value=np.nan)}, index=customers.index)
