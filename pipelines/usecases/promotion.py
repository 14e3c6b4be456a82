"""Use cases of the model registry: promote a version to `champion`; the champion history."""

from __future__ import annotations

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.registry import Decision, Gates, apply_decision
from models.registry import history as registry_history
from models.registry import promote as registry_promote
from models.registry import review_promotion as review
from models.tracking import connect
from pipelines.errors import BadInput, NotFound, as_typed
from pipelines.signals import deferred
from pipelines.usecases.preflight import check_tracking


def _unless_missing(exc: MlflowException, version: str) -> None:
    """Raise ``exc`` unless the registry answered "does not exist"; `BadInput` when the version
    is not a number."""
    code = getattr(exc, "error_code", "")
    if code == "INVALID_PARAMETER_VALUE":
        raise BadInput(
            f"version {version!r} is not a version number",
            field="VERSION",
            hint="give the number, e.g. 3",
        ) from exc
    if code != "RESOURCE_DOES_NOT_EXIST":
        raise exc


def require_version(client: MlflowClient, model: str, version: str) -> None:
    """`NotFound` naming the model, or the version, that is not in the registry."""
    try:
        client.get_registered_model(model)
    except MlflowException as exc:
        _unless_missing(exc, version)
        raise NotFound(
            f"no registered model {model!r}",
            field="--model",
            hint="check --model, or train one with `creditrisk train`",
        ) from exc
    try:
        client.get_model_version(model, version)
    except MlflowException as exc:
        _unless_missing(exc, version)
        raise NotFound(
            f"model {model!r} has no version {version}",
            field="VERSION",
            hint="see the versions with `creditrisk models history` or the MLflow UI",
        ) from exc


def promote(
    tracking_uri: str, model: str, version: str, approver: str, gates: Gates | None = None
) -> Decision:
    """Ask the registry to promote ``version`` of ``model`` (gates, champion comparison, four eyes).

    A refusal is a `Decision` with ``promoted`` False and its reasons (recorded either way); a
    model or version that does not exist raises `NotFound`.
    """
    client = check_tracking(tracking_uri)
    with as_typed():
        require_version(client, model, str(version))
        return registry_promote(client, model, str(version), approver, gates)


def champion_history(tracking_uri: str, model: str) -> pd.DataFrame:
    """Every promotion and refusal of ``model``, oldest first."""
    client = check_tracking(tracking_uri)
    with as_typed():
        return registry_history(client, model)


def review_promotion(
    tracking_uri: str, model: str, version: str, approver: str, gates: Gates | None = None
) -> Decision:
    """The promotion decision for ``version`` without acting on it (see `apply_promotion`).

    The main job scores with the candidate before the alias moves, so that promotion and the
    scoring it triggers become visible together.
    """
    client = check_tracking(tracking_uri)
    require_version(client, model, str(version))
    with as_typed():
        return review(client, model, str(version), approver, gates)


def apply_promotion(tracking_uri: str, decision: Decision) -> Decision:
    """Move `champion` for a promotion and record the decision either way."""
    with as_typed(), deferred():
        return apply_decision(connect(tracking_uri), decision)
