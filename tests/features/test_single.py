"""One customer's features from its records (`features.single`) equal the batch build's row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import ID, TIME, book_context, build_features
from features.labels import default_dates
from features.single import default_date, feature_row, records_of
from features.synthetic import generate_book


@pytest.fixture(scope="module")
def book() -> dict[str, pd.DataFrame]:
    tables = generate_book(n_customers=400, months=36, seed=7)
    # restatements and a customer with no founding date: paths the synthetic book rarely takes
    statements = tables["financial_statements"]
    restated = statements.iloc[::7].assign(
        published_on=lambda f: f["published_on"] + pd.Timedelta(days=40),
        revenue=lambda f: f["revenue"] * 1.1,
    )
    tables["financial_statements"] = pd.concat([statements, restated], ignore_index=True)
    tables["customers"].loc[3, "founded_on"] = pd.NaT
    return tables


def _equal(one: dict, row: pd.Series) -> list[str]:
    wrong = []
    for name, value in one.items():
        want = row[name]
        if isinstance(want, str) or value is None or isinstance(value, str):
            same = (None if pd.isna(want) else want) == value
        else:
            same = (np.isnan(value) and np.isnan(want)) or value == want
        if not same:
            wrong.append(f"{name}: {value!r} != {want!r}")
    return wrong


@pytest.mark.parametrize("as_of", ["2022-01-01", "2022-07-15", "2023-10-01"])
def test_every_customer_equals_the_batch_row(book, as_of):
    as_of = pd.Timestamp(as_of)
    dates = default_dates(book)
    context = book_context(book, as_of, dates)
    batch = build_features(book, as_of, context, dates).set_index(ID)
    assert len(batch) > 100
    for customer_id, row in batch.iterrows():
        records = records_of(book, customer_id)
        assert not default_date(records) <= np.datetime64(as_of, "D")
        one = feature_row(records, as_of, context)
        assert list(one) == [c for c in batch.columns if c != TIME]
        assert not _equal(one, row), customer_id


def test_default_dates_equal_the_batch(book):
    dates = default_dates(book)
    for customer_id in book["customers"][ID].astype(str):
        one = default_date(records_of(book, customer_id))
        want = dates.get(customer_id)
        assert (np.isnat(one) and want is None) or one == np.datetime64(want, "D")
    without = {**book, "defaults": None}
    derived = default_dates(without)
    for customer_id in book["customers"][ID].astype(str)[:100]:
        one = default_date(records_of(without, customer_id))
        want = derived.get(customer_id)
        assert (np.isnat(one) and want is None) or one == np.datetime64(want, "D")
