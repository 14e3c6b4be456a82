"""Customer partitions of a book: each customer's rows land in one partition, by a stable hash.

A customer's features depend on its own rows plus the small broadcast tables of
`features.build.BookContext`, so building each partition with the whole book's context and
stacking the results gives the whole build (tests/features/test_partition.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ID = "customer_id"


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
