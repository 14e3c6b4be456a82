"""The promote flow: review a version against the gates and the champion, then act on it."""

from __future__ import annotations

from prefect import flow

from models.registry import Decision, Gates
from pipelines.flows.tasks import apply_promotion_task, review_promotion_task
from pipelines.settings import Settings, get_settings


@flow(name="promote")
def promote_flow(
    settings: Settings | None = None,
    model: str | None = None,
    version: str | None = None,
    approver: str | None = None,
    gates: Gates | None = None,
    reviewed: Decision | None = None,
) -> Decision:
    """Move `champion` to ``version`` when the gates pass, it is no worse than the champion and
    the approver is not the trainer; the decision is recorded either way. With ``reviewed`` (the
    main job, which scored with the candidate first) only that decision is applied."""
    settings = settings or get_settings()
    decision = reviewed or review_promotion_task(
        settings.tracking_uri, model or settings.model_name, str(version), approver, gates
    )
    return apply_promotion_task(settings.tracking_uri, decision)
