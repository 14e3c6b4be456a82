"""Financial ratios by hand: point in time by published_on, prior year, zero denominators."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.financial import financial_features
from features.schemas import STATEMENT_AMOUNTS

COLUMNS = ["customer_id", "period_end", "published_on", *STATEMENT_AMOUNTS]
NAN = float("nan")
ROWS = [
    ("X", "2021-09-30", "2021-11-01", 1000, 100, 20, 50, 2000, 1000, 600, 300, 100, 1000, 200),
    ("X", "2021-12-31", "2022-02-15", 1100, 90, 20, 40, 2100, 1200, 600, 300, 100, 900, 200),
    ("X", "2022-09-30", "2022-11-10", 1200, 60, 0, 24, 2400, 1800, 500, 400, 80, 600, NAN),
    ("X", "2022-12-31", "2023-03-01", 9999, 1, 1, 1, 9999, 1, 1, 1, 1, 1, 1),  # published on as_of
    ("Y", "2022-12-31", "2023-04-01", 500, 50, 5, 20, 800, 400, 300, 100, 50, 400, 10),
    ("Z", "2022-06-30", "2022-08-01", 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, NAN),
]
AS_OF = pd.Timestamp("2023-03-01")


def statements(rows=ROWS) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("period_end", "published_on"):
        df[c] = pd.to_datetime(df[c])
    return df


def build(rows=ROWS, as_of=AS_OF, ids=("X", "Y", "Z")) -> pd.DataFrame:
    out = financial_features(statements(rows), pd.Series(list(ids)), as_of)
    out.index = list(ids)
    return out


def test_latest_published_statement_by_hand():
    x = build().loc["X"]
    assert x["leverage"] == pytest.approx(0.75)
    assert x["current_ratio"] == pytest.approx(1.25)
    assert x["quick_ratio"] == pytest.approx(80 / 400)  # no inventory: cash / current liabilities
    assert math.isnan(x["interest_coverage"])  # zero interest expense: NaN, not inf
    assert x["ebit_margin"] == pytest.approx(0.05)
    assert x["net_margin"] == pytest.approx(0.02)
    assert x["return_on_assets"] == pytest.approx(0.01)
    assert x["log_total_assets"] == pytest.approx(np.log(2400))
    assert x["statement_age_days"] == 152
    assert x["revenue_latest"] == 1200


def test_change_on_the_statement_one_year_earlier():
    x = build().loc["X"]
    assert x["revenue_growth_1y"] == pytest.approx(0.2)
    assert x["leverage_change_1y"] == pytest.approx(0.75 - 0.5)
    assert x["current_ratio_change_1y"] == pytest.approx(1.25 - 2.0)
    assert x["quick_ratio_change_1y"] == pytest.approx(0.2 - (600 - 200) / 300)
    assert math.isnan(x["interest_coverage_change_1y"])
    assert x["ebit_margin_change_1y"] == pytest.approx(-0.05)
    assert x["return_on_assets_change_1y"] == pytest.approx(0.01 - 0.025)


def test_statements_published_on_or_after_as_of_are_unknown():
    out = build()
    assert out.loc["Y"].isna().all()
    later = build(as_of=pd.Timestamp("2023-03-02")).loc["X"]
    assert later["revenue_latest"] == 9999
    assert later["revenue_growth_1y"] == pytest.approx(9999 / 1100 - 1)  # prior: 2021-12-31


def test_zero_denominators_give_nan_never_inf():
    z = build().loc["Z"]
    values = z.to_numpy(dtype=float)
    assert not np.isinf(values).any()
    assert math.isnan(z["leverage"]) and math.isnan(z["log_total_assets"])
    assert math.isnan(z["revenue_growth_1y"])  # no statement a year earlier
    assert z["statement_age_days"] == (AS_OF - pd.Timestamp("2022-06-30")).days


def test_prior_year_allows_an_irregular_period_end_but_not_a_quarter_off():
    near = [ROWS[2], (*ROWS[0][:1], "2021-10-31", *ROWS[0][2:])]
    assert build(near, ids=("X",)).loc["X", "revenue_growth_1y"] == pytest.approx(0.2)
    quarter_off = [ROWS[2], (*ROWS[0][:1], "2021-06-30", *ROWS[0][2:])]
    assert math.isnan(build(quarter_off, ids=("X",)).loc["X", "revenue_growth_1y"])


def test_prior_statement_must_be_known_too():
    late_prior = [ROWS[2], (*ROWS[0][:2], "2023-06-01", *ROWS[0][3:])]
    x = build(late_prior, ids=("X",)).loc["X"]
    assert x["revenue_latest"] == 1200
    assert math.isnan(x["revenue_growth_1y"])
