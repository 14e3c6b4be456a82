"""Use cases of the service's reads: a customer's stored scores, decisions, warnings and grade
history; warnings by level and status; the latest monitoring; score history for online warnings.
Results are plain JSON-ready dicts (the API and the web page render them)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from features.customer import months_before
from pipelines.errors import NotFound, as_typed
from pipelines.store import queries
from pipelines.store.monitoring import list_monitoring, read_monitoring
from pipelines.usecases.online import policy_fields, warning_fields
from pipelines.usecases.review import check_warning_filters
from pipelines.usecases.scoring import HISTORY_MONTHS

WARNING_FIELDS = (
    "id",
    "customer_id",
    "level",
    "latest_level",
    "status",
    "first_as_of",
    "last_as_of",
    "acknowledged_by",
    "acknowledge_note",
    "resolved_by",
    "resolution_note",
)


def _json(text: Any, empty: Any) -> Any:
    if text is None or (isinstance(text, float) and pd.isna(text)) or text == "":
        return empty
    return json.loads(text) if isinstance(text, str) else text


def _none(value: Any) -> Any:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def warning_record(row: dict[str, Any]) -> dict[str, Any]:
    """A stored warning as the API shows it."""
    out = {name: _none(row.get(name)) for name in WARNING_FIELDS}
    out["id"] = int(out["id"])
    return out | warning_fields(row)


def _score_record(row: dict[str, Any]) -> dict[str, Any]:
    policy = None
    if _none(row.get("recommended_limit")) is not None:
        policy = policy_fields(row)
    return {
        "as_of": row["as_of"],
        "run_id": int(row["run_id"]),
        "model_version": str(row["model_version"]),
        "pd": float(row["pd"]),
        "score": int(row["score"]),
        "grade": row["grade"],
        "reasons": _json(row.get("reasons"), []),
        "policy": policy,
    }


def customer_view(engine: Engine, model_name: str, customer_id: str) -> dict[str, Any]:
    """The latest stored score and decision, the warnings (resolved ones too), the grade history
    (oldest first); `NotFound` when no current run scored the customer."""
    with as_typed():
        scores = queries.customer_scores(engine, model_name, customer_id)
        warnings = queries.read_warnings(engine, None, None, customer_id)
    if scores.empty:
        raise NotFound(
            f"no scoring run of {model_name!r} holds customer {customer_id!r}",
            key=customer_id,
            hint="check the id, or score the customer with POST /v1/score",
        )
    rows = scores.to_dict("records")
    history = [{"as_of": r["as_of"], "grade": r["grade"], "pd": float(r["pd"])} for r in rows]
    return {
        "customer_id": customer_id,
        "latest": _score_record(rows[0]),
        "warnings": [warning_record(w) for w in warnings.to_dict("records")],
        "grade_history": history[::-1],
    }


def warnings_view(
    engine: Engine,
    status: tuple[str, ...] | None,
    levels: tuple[str, ...] | None,
    customer_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Stored warnings, newest first, at most ``limit``; unknown levels or statuses refused."""
    check_warning_filters(status, levels)
    with as_typed():
        frame = queries.read_warnings(engine, status, levels, customer_id)
    return [warning_record(w) for w in frame.head(limit).to_dict("records")]


def warning_view(engine: Engine, warning_id: int) -> dict[str, Any]:
    with as_typed():
        row = queries.read_warning(engine, warning_id)
    if row is None:
        raise NotFound(
            f"no warning with id {warning_id}",
            key=str(warning_id),
            hint="list the warnings with GET /v1/warnings",
        )
    return warning_record(row)


def latest_monitoring(engine: Engine, model_name: str) -> dict[str, Any]:
    """The newest monitoring's verdicts, alerts and notes; `NotFound` before the first."""
    with as_typed():
        history = list_monitoring(engine, model_name)
        if history.empty:
            raise NotFound(
                f"no monitoring of {model_name!r} is stored yet",
                hint="run `creditrisk monitor` (or the monitor flow) first",
            )
        record, _ = read_monitoring(engine, int(history["id"].iloc[0]))
    return {
        "id": int(record["id"]),
        "as_of": record["as_of"],
        "model_version": str(record["model_version"]),
        "created_at": f"{record['created_at']:%Y-%m-%dT%H:%M:%S}",
        "verdicts": record["verdicts"] or {},
        "alerts": record["alerts"] or [],
        "notes": record["notes"] or [],
    }


def score_history(
    engine: Engine, model_name: str, customer_id: str, as_of: pd.Timestamp
) -> list[tuple[dt.date, float, str]]:
    """The customer's stored (as_of, pd, grade) of the months before ``as_of``, oldest first:
    what its warnings compare with (the months `queries.read_score_history` reads in batch)."""
    start = months_before(pd.Timestamp(as_of), HISTORY_MONTHS).date()
    with as_typed():
        return queries.score_history_rows(engine, model_name, as_of.date(), start, customer_id)
