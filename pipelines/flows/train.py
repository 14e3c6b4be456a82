"""The train flow: train, log to MLflow and register a challenger (on Dask with an address)."""

from __future__ import annotations

from dataclasses import fields, replace

from prefect import flow

from pipelines.errors import BadInput
from pipelines.flows.cluster import address_of
from pipelines.flows.features import build_features_flow
from pipelines.flows.tasks import train_task
from pipelines.settings import Settings, get_settings
from pipelines.usecases.training import Trained, TrainRequest


def on_cluster(request: TrainRequest, address: str | None) -> TrainRequest:
    """The request with the Dask address training runs on (LightGBM's Dask estimator)."""
    if address is None:
        return request
    if "dask_address" not in {f.name for f in fields(TrainRequest)}:
        raise BadInput(
            "training on a Dask cluster is not available in this version",
            field="--dask-address",
            hint="train without --dask-address (or unset CREDITRISK_DASK_ADDRESS)",
        )
    return replace(request, dask_address=address)


@flow(name="train")
def train_flow(
    request: TrainRequest,
    settings: Settings | None = None,
    dask_address: str | None = None,
    refresh: bool = False,
) -> Trained:
    """Train LightGBM and the scorecard, register whichever validates best as `challenger`;
    with ``refresh`` (scheduled retraining) on training snapshots rebuilt from the book first."""
    settings = settings or get_settings()
    address = address_of(dask_address, settings.dask_address)
    if refresh:
        built = build_features_flow(settings, plan=True, dask_address=address)
        request = replace(request, snapshots=built.snapshots["training"].path, data=None)
    return train_task(on_cluster(request, address), settings)
