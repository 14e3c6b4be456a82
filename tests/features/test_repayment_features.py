"""Repayment features against hand-computed values on tiny frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.repayment import last_closed_month, month_columns, month_index, repayment_features
from features.schemas import SCHEMAS

COLUMNS = list(SCHEMAS["repayments"].columns)


def frame(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["month"] = pd.to_datetime(df["month"])
    return df


# A: four closed months by 2023-05-01 plus May (still open, must be ignored).
# utilisation .2 .5 .45 .3; dpd 0 35 65 10.
A = [
    ("A", "2023-01-01", 1000, 200, 100, 100, 0),
    ("A", "2023-02-01", 1000, 500, 100, 50, 35),
    ("A", "2023-03-01", 1000, 450, 100, 0, 65),
    ("A", "2023-04-01", 2000, 600, 100, 100, 10),
    ("A", "2023-05-01", 2000, 1900, 100, 0, 120),
]
# B: three months, nothing due, one utilisation jump of .3 inside the window.
B = [
    ("B", "2023-02-01", 1000, 100, 0, 0, 0),
    ("B", "2023-03-01", 1000, 400, 0, 0, 0),
    ("B", "2023-04-01", 1000, 450, 0, 0, 0),
]
# D: a missing March row.
D = [
    ("D", "2023-02-01", 500, 100, 10, 10, 0),
    ("D", "2023-04-01", 0, 100, 10, 10, 5),
]
IDS = pd.Series(["A", "B", "C", "D"])


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    out = repayment_features(frame(A + B + D), IDS, pd.Timestamp("2023-05-01"))
    out.index = IDS
    return out


def test_month_index_and_last_closed_month():
    assert month_index(pd.Series(pd.to_datetime(["1970-01-31", "2023-05-01"]))).tolist() == [0, 640]
    assert last_closed_month(pd.Timestamp("2023-05-01")) == 639  # April 2023
    assert last_closed_month(pd.Timestamp("2023-05-15")) == 639
    assert last_closed_month(pd.Timestamp("2023-04-30")) == 638  # April not closed yet


def test_month_columns_inside_a_window():
    dates = pd.Series(
        pd.to_datetime(["2022-12-31", "2023-01-01", "2023-02-17", "2023-03-31", "2023-04-01", None])
    )
    first = month_index(pd.Series([pd.Timestamp("2023-01-01")]))[0]
    assert month_columns(dates, first, 3).tolist() == [-1, 0, 1, 2, -1, -1]


def test_three_month_window_by_hand(features):
    a = features.loc["A"]
    assert a["days_past_due_max_3m"] == 65
    assert a["months_30dpd_3m"] == 2
    assert a["months_60dpd_3m"] == 1
    assert a["months_90dpd_3m"] == 0
    assert a["payment_ratio_3m"] == pytest.approx(150 / 300)
    assert a["utilisation_mean_3m"] == pytest.approx((0.5 + 0.45 + 0.3) / 3)
    assert a["utilisation_trend_3m"] == pytest.approx(0.3 - (0.5 + 0.45 + 0.3) / 3)
    assert a["utilisation_spikes_3m"] == 0  # the +.3 jump into February starts before the window
    assert a["balance_growth_3m"] == pytest.approx(600 / 500 - 1)


def test_latest_month_values(features):
    a = features.loc["A"]
    assert a["days_past_due_current"] == 10
    assert a["credit_limit_latest"] == 2000
    assert a["utilisation_latest"] == pytest.approx(0.3)
    assert a["months_since_30dpd"] == 1  # March was 65 dpd, April is the latest closed month


def test_windows_the_data_cannot_fill_are_missing(features):
    for w in (6, 12, 24):
        assert features.loc["A"].filter(like=f"_{w}m").isna().all()
    assert features.loc["C"].isna().all()  # no rows at all
    d = features.loc["D"]
    assert d.filter(like="_3m").isna().all()  # March missing
    assert d["days_past_due_current"] == 5
    assert np.isnan(d["utilisation_latest"])  # zero limit: no utilisation, not inf


def test_spikes_zero_due_and_clean_history(features):
    b = features.loc["B"]
    assert b["utilisation_spikes_3m"] == 1
    assert np.isnan(b["payment_ratio_3m"])  # nothing due: no ratio
    assert b["balance_growth_3m"] == pytest.approx(3.5)
    assert b["months_since_30dpd"] == 3  # clean for all three months on record
    assert b["months_30dpd_3m"] == 0


def test_open_month_is_ignored_until_it_closes():
    early = repayment_features(frame(A), pd.Series(["A"]), pd.Timestamp("2023-05-31"))
    closed = repayment_features(frame(A), pd.Series(["A"]), pd.Timestamp("2023-06-01"))
    assert early.loc[0, "days_past_due_current"] == 10
    assert closed.loc[0, "days_past_due_current"] == 120
    assert closed.loc[0, "days_past_due_max_3m"] == 120


def test_long_windows_on_a_full_history():
    months = pd.date_range("2021-01-01", periods=24, freq="MS")
    dpd = np.zeros(24, dtype=int)
    dpd[3] = 40  # 20 months before the last closed month
    rows = [("X", m, 1000, 100 + i, 50, 50, int(dpd[i])) for i, m in enumerate(months)]
    out = repayment_features(frame(rows), pd.Series(["X"]), pd.Timestamp("2023-01-01")).loc[0]
    assert out["months_since_30dpd"] == 20
    assert out["months_30dpd_24m"] == 1 and out["months_30dpd_12m"] == 0
    assert out["days_past_due_max_24m"] == 40 and out["days_past_due_max_12m"] == 0
    assert out["payment_ratio_24m"] == 1.0
    assert out["balance_growth_24m"] == pytest.approx(123 / 100 - 1)
    assert out["balance_growth_12m"] == pytest.approx(123 / 112 - 1)
    assert out["utilisation_mean_12m"] == pytest.approx(np.mean(np.arange(112, 124)) / 1000)


def test_rows_of_other_customers_and_order_do_not_matter():
    shuffled = frame(A + B + D).sample(frac=1.0, random_state=3)
    a_only = repayment_features(frame(A), pd.Series(["A"]), pd.Timestamp("2023-05-01"))
    mixed = repayment_features(shuffled, pd.Series(["A"]), pd.Timestamp("2023-05-01"))
    pd.testing.assert_frame_equal(a_only, mixed)


def _walk_on_month_rows(m, windows=(3, 6, 12, 24)):
    """The walk as numpy on whole month rows (all customers at once): the reference the compiled
    per-customer walk must reproduce bit for bit."""
    from features.catalog import DPD_THRESHOLDS, UTILISATION_SPIKE
    from features.repayment import safe_divide

    def utilisation(balance, limit):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(limit > 0, balance.astype(float) / limit, np.nan)

    span, n = m.present.shape
    util_last = utilisation(m.balance[-1], m.credit_limit[-1])
    months, dpd_max = np.zeros(n), np.full(n, -np.inf)
    over = {t: np.zeros(n) for t in DPD_THRESHOLDS}
    paid, due, util_sum, util_n, spikes = (np.zeros(n) for _ in range(5))
    out, util_next = {}, util_last
    for k in range(1, span + 1):
        j = span - k
        dpd = m.days_past_due[j]
        util = util_last if k == 1 else utilisation(m.balance[j], m.credit_limit[j])
        months += m.present[j]
        dpd_max = np.maximum(dpd_max, dpd)
        for t in DPD_THRESHOLDS:
            over[t] += dpd >= t
        paid += m.amount_paid[j]
        due += m.amount_due[j]
        util_sum += np.where(~np.isnan(util), util, 0.0)
        util_n += ~np.isnan(util)
        if k > 1:
            spikes += util_next - util > UTILISATION_SPIKE
        util_next = util
        if k not in windows:
            continue
        filled = months == k
        mean = safe_divide(util_sum, util_n)
        out[f"days_past_due_max_{k}m"] = np.where(filled, dpd_max, np.nan)
        for t in DPD_THRESHOLDS:
            out[f"months_{t}dpd_{k}m"] = np.where(filled, over[t], np.nan)
        out[f"payment_ratio_{k}m"] = np.where(filled, safe_divide(paid, due), np.nan)
        out[f"utilisation_mean_{k}m"] = np.where(filled, mean, np.nan)
        out[f"utilisation_trend_{k}m"] = np.where(filled, util_last - mean, np.nan)
        out[f"utilisation_spikes_{k}m"] = np.where(filled, spikes, np.nan)
        growth = safe_divide(m.balance[-1], m.balance[j]) - 1.0
        out[f"balance_growth_{k}m"] = np.where(filled, growth, np.nan)
    anyp = months > 0
    latest = span - 1 - np.argmax(m.present[::-1], axis=0)
    first = np.argmax(m.present, axis=0)
    late = m.days_past_due[::-1] >= 30
    since = np.where(late.any(axis=0), np.argmax(late, axis=0), span - first)
    cols = np.arange(n)
    out["days_past_due_current"] = np.where(anyp, m.days_past_due[latest, cols], np.nan)
    out["months_since_30dpd"] = np.where(anyp, since, np.nan)
    util_latest = utilisation(m.balance[latest, cols], m.credit_limit[latest, cols])
    out["utilisation_latest"] = np.where(anyp, util_latest, np.nan)
    out["credit_limit_latest"] = np.where(anyp, m.credit_limit[latest, cols], np.nan)
    return {name: values.astype(float) for name, values in out.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_walk_is_the_walk_on_month_rows(dtype):
    """Random histories with gaps, zero limits and dues, NaN cells and late months: every
    feature, name and order as the numpy walk on whole month rows gives them, bit for bit."""
    from features.repayment import RepaymentMatrix, matrix_features

    rng = np.random.default_rng(3)
    span, n = 24, 3000
    present = rng.random((span, n)) < rng.choice([0.0, 0.5, 0.95, 1.0], n)

    def cells(scale, zeros=0.1):
        values = (rng.gamma(1.5, scale, (span, n)) * (rng.random((span, n)) > zeros)).round(2)
        values = np.where(present, values, np.nan).astype(dtype)
        values[rng.random((span, n)) < 0.01] = np.nan  # a few unknown cells in present months
        return values

    m = RepaymentMatrix(
        present, cells(20, zeros=0.6), cells(1000), cells(600), cells(100), cells(90)
    )
    got, want = matrix_features(m), _walk_on_month_rows(m)
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == np.float64
        np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)
