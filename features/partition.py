"""Customer partitions of a book: each customer's rows land in one partition, by a stable hash.

A customer's features depend on its own rows plus the small broadcast tables of
`features.build.BookContext`, so building each partition with the whole book's context and
stacking the results gives the whole build (tests/features/test_partition.py). A large book is
generated in chunks of consecutive customers (`chunk_ranges`), each written as a part of its own
(features.io), and built part by part (`build_partitioned`;
tests/features/test_partitioned_book.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from features.build import BookContext, build_features
from features.snapshots import build_snapshot

ID = "customer_id"
# What the whole book's context needs of each table (read whole: small even at 10M customers).
CONTEXT_COLUMNS = {
    "customers": ("customer_id", "industry", "region", "onboarded_on"),
    "defaults": ("customer_id", "defaulted_on"),
}
# In place of the defaults table, for a book without one (dates derived from 90+ days past due).
DERIVED_DEFAULT_COLUMNS = {"repayments": ("customer_id", "month", "days_past_due")}


def partition_of(ids: pd.Series | np.ndarray, n_partitions: int) -> np.ndarray:
    """The partition (0 .. n_partitions - 1) of each customer id: stable across runs and
    machines (pandas' hash of the id text, not Python's salted `hash`)."""
    if n_partitions < 1:
        raise ValueError(f"n_partitions must be at least 1, got {n_partitions}")
    text = pd.Series(ids).astype("str").to_numpy(dtype=object)
    return (pd.util.hash_array(text) % np.uint64(n_partitions)).astype(np.int64)


def partition_tables(
    tables: dict[str, pd.DataFrame], n_partitions: int
) -> list[dict[str, pd.DataFrame]]:
    """The book split into ``n_partitions`` books of whole customers (tables without a
    customer id, if any, are given whole to every partition)."""
    parts: list[dict[str, pd.DataFrame]] = [{} for _ in range(n_partitions)]
    for name, frame in tables.items():
        if ID not in frame.columns:
            for part in parts:
                part[name] = frame
            continue
        groups = partition_of(frame[ID], n_partitions)
        for g, part in enumerate(parts):
            part[name] = frame[groups == g]
    return parts


def chunk_ranges(n_customers: int, chunk_customers: int) -> list[tuple[int, int]]:
    """(first customer, customers) of each chunk of at most ``chunk_customers`` of a book."""
    if n_customers < 1 or chunk_customers < 1:
        raise ValueError(
            f"need at least one customer in the book and per chunk: {n_customers}, "
            f"{chunk_customers}"
        )
    return [
        (first, min(chunk_customers, n_customers - first))
        for first in range(0, n_customers, chunk_customers)
    ]


def build_partitioned(
    parts: Iterable[dict[str, pd.DataFrame]],
    context: BookContext,
    observed: pd.Timestamp | None = None,
    horizon_months: int = 12,
) -> Iterator[pd.DataFrame]:
    """Each partition's features at ``context.as_of``, one partition at a time (``parts`` may
    read them lazily); with ``observed`` (the whole book's last month close) its snapshot with
    labels. Stacked, they equal the whole book's build.

    A partition's own default dates are its customers' share of the whole book's: only the
    context (industry rates, category levels) needs the whole book.
    """
    for part in parts:
        if observed is None:
            yield build_features(part, context.as_of, context)
        else:
            yield build_snapshot(part, context.as_of, horizon_months, context, observed=observed)
