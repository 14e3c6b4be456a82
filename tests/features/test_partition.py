"""A build per partition of customers, given the whole book's context, equals the whole build."""

from __future__ import annotations

import pandas as pd
import pytest

from features.build import book_context, build_features
from features.labels import observed_until
from features.market import RATE
from features.partition import partition_tables
from features.snapshots import ID, build_snapshot
from features.synthetic import generate_book

AS_OF = pd.Timestamp("2023-01-01")


@pytest.fixture(scope="module")
def book() -> dict[str, pd.DataFrame]:
    tables = generate_book(300, months=36, start="2021-01-01", seed=5)
    text = {c: "str" for c in ("segment", "industry", "region")}  # as read from CSV
    return tables | {"customers": tables["customers"].astype(text)}


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(ID).reset_index(drop=True)


@pytest.mark.parametrize("k", [2, 5])
def test_partitioned_snapshot_equals_whole(book, k):
    whole = build_snapshot(book, AS_OF)
    context = book_context(book, AS_OF)
    until = observed_until(book)
    parts = [
        build_snapshot(p, AS_OF, context=context, observed=until) for p in partition_tables(book, k)
    ]
    pd.testing.assert_frame_equal(by_customer(pd.concat(parts)), by_customer(whole))
    assert whole["default_flag"].notna().all()


def test_without_the_whole_book_context_the_market_feature_differs(book):
    whole = by_customer(build_features(book, AS_OF))
    local = by_customer(pd.concat(build_features(p, AS_OF) for p in partition_tables(book, 5)))
    assert not local[RATE].equals(whole[RATE])
    pd.testing.assert_series_equal(local["leverage"], whole["leverage"])
