"""Default dates, the performing population at an as-of date, and default-within-horizon labels.

Definitions (one rule for every table):
- A customer's default date is the first ``defaulted_on`` in the ``defaults`` table when that
  table is given; otherwise the close of the first month with days_past_due >= 90, i.e.
  month + 1 month (the day that month's row became known).
- A default is known at ``as_of`` iff defaulted_on <= as_of; such customers are already in default
  (no cure: the first default counts): they are never labelled nor trained on, and scoring grades
  them D (`defaulted_population`).
- The population at ``as_of``: customers onboarded before ``as_of`` (or with no onboarding date)
  and not already in default.
- ``default_flag`` = 1.0 iff as_of < defaulted_on <= as_of + horizon, else 0.0; NaN for everyone
  when as_of + horizon is later than the last observed month close (the horizon has not matured).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.customer import customer_codes

DEFAULT_DPD = 90
LABEL = "default_flag"


def derived_default_dates(repayments: pd.DataFrame) -> pd.Series:
    """First month with days past due >= 90, plus one month (its close), per customer."""
    hit = repayments[(repayments["days_past_due"] >= DEFAULT_DPD).to_numpy()]
    first = hit.groupby("customer_id", observed=True, sort=False)["month"].min()
    closed = pd.to_datetime(first) + pd.DateOffset(months=1)
    return closed.rename("defaulted_on")


def default_dates(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Each defaulted customer's first default date (index customer_id, name defaulted_on)."""
    defaults = tables.get("defaults")
    if defaults is not None:
        first = defaults.groupby("customer_id", observed=True, sort=False)["defaulted_on"].min()
        dates = pd.to_datetime(first).rename("defaulted_on")
    else:
        dates = derived_default_dates(tables["repayments"])
    dates.index = dates.index.astype(str)
    return dates


def observed_until(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The last observed month close of the book: latest repayment month + 1 month."""
    return pd.Timestamp(tables["repayments"]["month"].max()) + pd.DateOffset(months=1)


def default_date_of(customer_ids: pd.Series, dates: pd.Series) -> np.ndarray:
    """Default date of each customer (NaT where none), aligned with ``customer_ids``."""
    code = customer_codes(pd.Series(dates.index, dtype="str"), customer_ids)
    out = np.full(len(customer_ids), np.datetime64("NaT"), dtype="datetime64[ns]")
    keep = code >= 0
    out[code[keep]] = dates.to_numpy(dtype="datetime64[ns]")[keep]
    return out


def onboarded_before(customers: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Customers onboarded before ``as_of`` or with no onboarding date (boolean mask)."""
    onboarded = pd.to_datetime(customers["onboarded_on"])
    return ((onboarded < as_of) | onboarded.isna()).to_numpy()


def in_default(customers: pd.DataFrame, as_of: pd.Timestamp, dates: pd.Series) -> np.ndarray:
    """Customers whose default is known at ``as_of`` (boolean mask)."""
    return default_date_of(customers["customer_id"], dates) <= np.datetime64(as_of)


def performing_population(
    customers: pd.DataFrame, as_of: pd.Timestamp, dates: pd.Series
) -> pd.DataFrame:
    """Customers onboarded before ``as_of`` and not in default at ``as_of``."""
    return customers[onboarded_before(customers, as_of) & ~in_default(customers, as_of, dates)]


def defaulted_population(
    customers: pd.DataFrame, as_of: pd.Timestamp, dates: pd.Series
) -> pd.DataFrame:
    """Customers onboarded before ``as_of`` and in default at ``as_of``."""
    return customers[onboarded_before(customers, as_of) & in_default(customers, as_of, dates)]


def label_of(
    defaulted_on: np.ndarray, as_of: pd.Timestamp, horizon_months: int, until: pd.Timestamp
) -> np.ndarray:
    """default_flag from aligned default dates; NaN when the horizon has not matured."""
    end = as_of + pd.DateOffset(months=horizon_months)
    if end > until:
        return np.full(len(defaulted_on), np.nan)
    hit = (defaulted_on > np.datetime64(as_of)) & (defaulted_on <= np.datetime64(end))
    return hit.astype(float)


def build_labels(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    horizon_months: int = 12,
    observed: pd.Timestamp | None = None,
    dates: pd.Series | None = None,
) -> pd.DataFrame:
    """customer_id and default_flag for the performing population at ``as_of``.

    Pass ``observed`` (the book's last month close) when labelling a partition of customers.
    """
    as_of = pd.Timestamp(as_of)
    dates = default_dates(tables) if dates is None else dates
    until = observed_until(tables) if observed is None else pd.Timestamp(observed)
    population = performing_population(tables["customers"], as_of, dates)
    flag = label_of(default_date_of(population["customer_id"], dates), as_of, horizon_months, until)
    return pd.DataFrame(
        {"customer_id": population["customer_id"].to_numpy(), LABEL: flag}
    ).reset_index(drop=True)
