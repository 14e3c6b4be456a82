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
