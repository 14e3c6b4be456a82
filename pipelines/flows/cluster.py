"""The Dask branch of the flows: with a scheduler address, snapshots are built and dates scored
partitioned by customer on that cluster (`pipelines.flows.partitioned`); without one nothing
here imports Dask."""

from __future__ import annotations

import pandas as pd

from features.snapshots import TIME
from pipelines.store.runs import ScoredDate
from pipelines.usecases.scoring import ScoringRequest
from pipelines.usecases.snapshots import SnapshotBuilder


def address_of(given: str | None, configured: str | None) -> str | None:
    """The cluster to use: an option given, else CREDITRISK_DASK_ADDRESS; blank means none."""
    address = given if given is not None else configured
    return (address.strip() or None) if address else None


def partitioned_builder(address: str) -> SnapshotBuilder:
    """`build_snapshots` over the cluster at ``address`` (same frame), reporting each date."""
    from pipelines.flows.partitioned import build_snapshots_partitioned

    def build(tables, dates, horizon_months, progress=None, with_defaulted=False):
        frame = build_snapshots_partitioned(
            tables, dates, horizon_months, address=address, with_defaulted=with_defaulted
        )
        if progress is not None:
            for as_of, snapshot in frame.groupby(TIME, sort=True):
                progress(pd.Timestamp(as_of), snapshot)
        return frame

    return build


def compute_partitioned(
    frame: pd.DataFrame, request: ScoringRequest, address: str
) -> list[ScoredDate]:
    """`scoring.compute_dates` over the cluster at ``address``, partitioned by customer."""
    from pipelines.flows.partitioned import compute_dates_partitioned

    return compute_dates_partitioned(frame, request, address=address)
