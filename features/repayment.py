"""Repayment behaviour over 3/6/12/24 closed months, on a dense (customers x months) matrix.

A month's row is known at ``as_of`` iff month + 1 month <= as_of. Window w covers the w calendar
months ending at the last closed month; a window the customer's rows do not fill is NaN, not zero.
Matrices are month-major (row j = month, last row = last closed month); walking back from the last
month, running totals give every window's value as soon as the walk reaches its length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import DPD_THRESHOLDS, UTILISATION_SPIKE, WINDOWS
from features.customer import customer_codes

SPAN = max(WINDOWS)
NO_MONTH = -(1 << 40)
DELINQUENT_DPD = 30  # months_since_30dpd counts back to a month this late


def month_index(dates: pd.Series | np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each date (its calendar month); NaT gives a very negative index."""
    values = np.asarray(dates)
    if values.dtype.kind != "M":
        values = np.asarray(pd.to_datetime(values))
    days = values.astype("datetime64[D]").view(np.int64)
    valid = days != np.iinfo(np.int64).min
    if not valid.any():
        return np.full(len(days), NO_MONTH)
    high = days.max()
    low = np.min(days, where=valid, initial=high)
    if high - low > min(200_000, len(days)):
        out = values.astype("datetime64[M]").view(np.int64)
    else:  # more rows than days: a day -> month lookup table beats calendar arithmetic
        table = np.arange(low, high + 1).astype("datetime64[D]").astype("datetime64[M]")
        out = table.view(np.int64)[np.where(valid, days - low, 0)]
    return np.where(valid, out, NO_MONTH)


def last_closed_month(as_of: pd.Timestamp) -> int:
    """Month index of the latest month that had closed by ``as_of`` (month + 1 month <= as_of)."""
    return (as_of.year - 1970) * 12 + as_of.month - 1 - 1


@dataclass(frozen=True)
class RepaymentMatrix:
    """Repayment columns as month-major (SPAN x customers) matrices; the last row is the last
    closed month. ``present`` marks months with a row."""

    present: np.ndarray
    days_past_due: np.ndarray
    credit_limit: np.ndarray
    balance: np.ndarray
    amount_due: np.ndarray
    amount_paid: np.ndarray


def month_columns(dates: pd.Series, first: int, span: int) -> np.ndarray:
    """Column (int8) of each date's month in a window of ``span`` months from month index
    ``first``; -1 outside it or for NaT. A day lookup table keeps temporaries small."""
    days = np.asarray(dates)
    if days.dtype.kind != "M":
        days = np.asarray(pd.to_datetime(days))
    days = days.astype("datetime64[D]").view(np.int64)
    months = np.arange(first, first + span + 1).astype("datetime64[M]")
    low = months[0].astype("datetime64[D]").astype(np.int64)
    high = months[-1].astype("datetime64[D]").astype(np.int64)
    table = np.full(high - low + 2, -1, dtype=np.int8)
    day_months = np.arange(low, high).astype("datetime64[D]").astype("datetime64[M]")
    table[1:-1] = day_months.astype(np.int64) - first
    np.subtract(days, low - 1, out=days)
    np.clip(days, 0, len(table) - 1, out=days)
    return table[days]


def repayment_matrix(
    repayments: pd.DataFrame, customer_ids: pd.Series, as_of: pd.Timestamp, span: int = SPAN
) -> RepaymentMatrix:
    """Pivot the known months among the last ``span`` closed months to dense matrices.

    Float64 columns stay float64; narrower ones (float32, ints) become float32 (exact for them).
    """
    column = month_columns(repayments["month"], last_closed_month(as_of) - span + 1, span)
    row = customer_codes(repayments["customer_id"], customer_ids)
    keep = (column >= 0) & (row >= 0)
    everything = bool(keep.all())
    n = len(customer_ids)
    flat = column.astype(np.int64) * n
    flat += row
    if not everything:
        flat = flat[keep]
    del column, row
    present = np.zeros(span * n, dtype=bool)
    present[flat] = True

    def dense(name: str) -> np.ndarray:
        source = repayments[name]
        dtype = np.float64 if source.dtype == np.float64 else np.float32
        values = source.to_numpy(dtype=dtype, na_value=np.nan)
        out = np.full(span * n, np.nan, dtype=dtype)
        out[flat] = values if everything else values[keep]
        return out.reshape(span, n)

    return RepaymentMatrix(
        present.reshape(span, n),
        dense("days_past_due"),
        dense("credit_limit"),
        dense("balance"),
        dense("amount_due"),
        dense("amount_paid"),
    )


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with NaN where the result is not finite (zero denominators)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(numerator, dtype=float) / np.asarray(denominator, dtype=float)
    return np.where(np.isfinite(out), out, np.nan)


def matrix_features(
    m: RepaymentMatrix, windows: tuple[int, ...] = WINDOWS
) -> dict[str, np.ndarray]:
    """Every repayment feature from the dense matrices (one array per catalog feature).

    Window features come first, shortest window first (the walk's order), then the latest ones.
    One compiled walk back over each customer's months (`features._repayment_kernels`): a
    window's figures are its running totals when the walk reaches its length.
    """
    from features._repayment_kernels import matrix_walk

    span = m.present.shape[0]
    kept = sorted({k for k in windows if 1 <= k <= span})
    rows = matrix_walk(
        m.present, m.days_past_due, m.credit_limit, m.balance, m.amount_due, m.amount_paid,
        np.asarray(kept, dtype=np.int64), np.asarray(DPD_THRESHOLDS, dtype=np.float64),
        UTILISATION_SPIKE, DELINQUENT_DPD,
    )  # fmt: skip
    names = [
        name
        for k in kept
        for name in (
            f"days_past_due_max_{k}m",
            *(f"months_{t}dpd_{k}m" for t in DPD_THRESHOLDS),
            f"payment_ratio_{k}m",
            f"utilisation_mean_{k}m",
            f"utilisation_trend_{k}m",
            f"utilisation_spikes_{k}m",
            f"balance_growth_{k}m",
        )
    ]
    latest = ("days_past_due_current", "months_since_30dpd", "utilisation_latest",
              "credit_limit_latest")  # fmt: skip
    return dict(zip([*names, *latest], rows, strict=True))


def repayment_features(
    repayments: pd.DataFrame, customer_ids: pd.Series, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Repayment features of ``customer_ids`` (same order) at ``as_of``."""
    matrix = repayment_matrix(repayments, customer_ids, as_of)
    return pd.DataFrame(matrix_features(matrix), index=customer_ids.index)
