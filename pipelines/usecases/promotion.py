"""Use cases of the model registry: promote a version to `champion`; the champion history."""

from __future__ import annotations

import pandas as pd
from mlflow.exceptions import MlflowException

from models.registry import Decision, Gates
from models.registry import history as registry_history
from models.registry import promote as registry_promote
from models.tracking import connect
from pipelines.errors import NotFound, as_typed


def promote(
    tracking_uri: str, model: str, version: str, approver: str, gates: Gates | None = None
) -> Decision:
    """Ask the registry to promote ``version`` of ``model`` (gates, champion comparison, four eyes).

    A refusal is a `Decision` with ``promoted`` False and its reasons (recorded either way); a
    model or version that does not exist raises `NotFound`.
    """
    client = connect(tracking_uri)
    with as_typed():
        try:
            client.get_model_version(model, str(version))
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise NotFound(
                f"model {model!r} has no version {version}",
                field="VERSION",
                hint="see the versions with `creditrisk models history` or the MLflow UI",
            ) from exc
        return registry_promote(client, model, str(version), approver, gates)


def champion_history(tracking_uri: str, model: str) -> pd.DataFrame:
    """Every promotion and refusal of ``model``, oldest first."""
    with as_typed():
        return registry_history(connect(tracking_uri), model)
