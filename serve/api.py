"""The `/v1` endpoints: thin calls of the use cases, each behind the role its action needs.

One customer's score (`/v1/score`, `/v1/score/features`) runs on the event loop: about a
millisecond of work with its score-history read (one indexed query), less than a hop to the
thread pool and back costs under load. Everything else (many customers, other store reads and
writes) runs in the thread pool. Those two read their bodies themselves (`read_body`): pydantic
validates the JSON bytes in one pass, where FastAPI builds Python objects of them first."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from features.schemas import SCHEMAS, TABLES
from features.single import CustomerRecords
from pipelines.errors import BadInput, Unavailable
from pipelines.store.lifecycle import STATUSES
from pipelines.usecases import lookup, review
from pipelines.usecases.access import list_keys, revoke_key
from pipelines.usecases.online import CustomerDecision
from serve.auth import Principal, require
from serve.schemas import (
    BatchRequest,
    BatchResponse,
    CustomerData,
    CustomerView,
    ErrorResponse,
    FeatureRequest,
    ModelCard,
    MonitoringView,
    Note,
    OverrideRecorded,
    OverrideRequest,
    ScoreRequest,
    ScoreResponse,
    StoredWarning,
    WarningList,
)

LEVELS = Literal["watch", "amber", "red", "defaulted", "green"]
ERRORS = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        401: "no valid API key in the X-API-Key header",
        403: "the key's role does not allow this",
        404: "not found",
        409: "the warning is in a state that does not allow this",
        413: "the request body is over the limit",
        422: "the request breaks the data contract: the errors name each field",
        503: "no model to score with, or the results store is away",
    }.items()
}
CustomerId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", examples=["C0001234"])]
WarningId = Annotated[int, Path(ge=1, le=2**62, examples=[1])]

router = APIRouter(prefix="/v1", responses=ERRORS)
BODY_DEFINITIONS: dict[str, dict] = {}  # what `json_body` bodies nest: components of the schema


def json_body(model: type[BaseModel]) -> dict:
    """``openapi_extra`` of a route that reads ``model`` itself (`read_body`): its required JSON
    body, as FastAPI documents a declared one."""
    ref = "#/components/schemas/{model}"
    schema = model.model_json_schema(ref_template=ref)
    BODY_DEFINITIONS.update(schema.pop("$defs", {}), **{model.__name__: schema})
    content = {"application/json": {"schema": {"$ref": ref.format(model=model.__name__)}}}
    return {"requestBody": {"required": True, "content": content}}


async def read_body(request: Request, model: type[BaseModel]) -> BaseModel:
    """The request's JSON body as ``model``, validated from its bytes; refused as FastAPI refuses
    a declared body (422, each error located under "body")."""
    data = await request.body()
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    json_media = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    if not data or not json_media:
        reason = "send a JSON body with Content-Type: application/json"
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": reason}])
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _service(request: Request):
    return request.app.state.service


def _kinds(table: str) -> dict[str, str]:
    """The contract's kind of each column of ``table`` but the id: datetime64[D], float64,
    int64 or object (text)."""
    out = {}
    for column, spec in SCHEMAS[table].columns.items():
        kind = str(spec.dtype)
        if column != "customer_id":
            out[column] = "datetime64[D]" if kind.startswith("datetime") else (
                kind if kind in ("float64", "int64") else "object"
            )  # fmt: skip
    return out


KINDS = {name: _kinds(name) for name in TABLES}


EPOCH = dt.date(1970, 1, 1).toordinal()
NAT = int(np.datetime64("NaT", "D").astype(np.int64))


def _days(dates: list) -> np.ndarray:
    """Dates as datetime64[D] (None as NaT) by their ordinals: numpy converts date objects one
    by one, at about a microsecond each."""
    ordinals = [NAT + EPOCH if d is None else d.toordinal() for d in dates]
    return (np.array(ordinals, dtype=np.int64) - EPOCH).astype("datetime64[D]")


def _columns(rows: list, table: str) -> dict[str, np.ndarray]:
    """Request rows of ``table`` as contract-typed column arrays (None as NaN or NaT)."""
    out = {}
    for column, kind in KINDS[table].items():
        values = [getattr(r, column) for r in rows]
        out[column] = _days(values) if kind == "datetime64[D]" else np.array(values, dtype=kind)
    return out


def records_of(data: CustomerData, book_tables: frozenset[str]) -> CustomerRecords:
    """One customer's request rows as column arrays; defaults count when the book has its own
    (else the default date comes from the repayments, as in the batch flow)."""
    customer = {"customer_id": data.customer.customer_id}
    for column, kind in KINDS["customers"].items():
        value = getattr(data.customer, column)
        customer[column] = np.datetime64(value, "D") if kind != "object" else value
    return CustomerRecords(
        customer=customer,
        repayments=_columns(data.repayments, "repayments"),
        financial_statements=_columns(data.financial_statements, "financial_statements"),
        events=_columns(data.events, "events"),
        defaults=_columns(data.defaults, "defaults") if "defaults" in book_tables else None,
    )


def _decision(d: CustomerDecision) -> dict:
    return {
        "customer_id": d.customer_id,
        "as_of": d.as_of.date(),
        "pd": d.pd,
        "score": d.score,
        "grade": d.grade,
        "in_default_since": d.in_default_since,
        "policy": d.policy,
        "reasons": d.reasons,
        "warning": d.warning,
    }


def score_customers(request: Request, customers: list[CustomerData], as_of: dt.date):
    """Decide the customers online against their stored history; the model that decided."""
    service, online = _service(request), _loaded(request)
    request.state.model_version = online.model_version
    when = pd.Timestamp(as_of)
    decisions = []
    for data in customers:
        cid = data.customer.customer_id
        history = lookup.score_history(service.engine, online.model_name, cid, when)
        decisions.append(online.decide_one(records_of(data, online.book.tables), when, history))
    return online, decisions


def _loaded(request: Request):
    service = _service(request)
    if service.holder.loaded is None:
        raise Unavailable(
            "no champion model is loaded: " + "; ".join(service.holder.status.reasons),
            hint="promote a champion, or check that MLflow answers, then POST /v1/admin/reload",
        )
    return service.holder.loaded.online


def _answered(request: Request, online) -> dict:
    """Which model answered, and the request's id."""
    model = {"name": online.model_name, "version": online.model_version}
    return {"model": model, "request_id": request.state.request_id}


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Score one customer from raw data",
    description="PD, score, grade, policy, top reasons and early warning of one customer at an "
    "as-of date, computed from the raw data by the batch flow's code.",
    openapi_extra=json_body(ScoreRequest),
)
async def score(request: Request, _: Principal = Depends(require("score"))):
    body = await read_body(request, ScoreRequest)
    request.state.target = body.customer.customer_id
    online, decisions = score_customers(request, [body], body.as_of)
    return {
        **_decision(decisions[0]),
        **_answered(request, online),
    }


@router.post(
    "/score/features",
    response_model=ScoreResponse,
    summary="Score one customer from a ready feature row",
    description="The same decision as POST /v1/score, from the model's input features as "
    "computed elsewhere (absent features count as missing).",
    openapi_extra=json_body(FeatureRequest),
)
async def score_features(request: Request, _: Principal = Depends(require("score"))):
    body = await read_body(request, FeatureRequest)
    request.state.target = body.customer_id
    online = _loaded(request)
    request.state.model_version = online.model_version
    when = pd.Timestamp(body.as_of)
    history = lookup.score_history(
        _service(request).engine, online.model_name, body.customer_id, when
    )
    decision = online.decide_features(body.customer_id, body.features, when, history)
    return {
        **_decision(decision),
        **_answered(request, online),
    }


@router.post(
    "/score/batch",
    response_model=BatchResponse,
    summary="Score several customers from raw data",
    description="Up to the configured number of customers (`creditrisk serve --max-batch`) at one "
    "as-of date; decisions in the order sent.",
)
def score_batch(body: BatchRequest, request: Request, _: Principal = Depends(require("score"))):
    limit = _service(request).config.max_batch
    if len(body.customers) > limit:
        raise BadInput(
            f"{len(body.customers)} customers in one request; at most {limit}",
            field="customers",
            hint=f"send at most {limit} customers per request",
        )
    online, decisions = score_customers(request, body.customers, body.as_of)
    return {
        **_answered(request, online),
        "decisions": [_decision(d) for d in decisions],
    }


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerView,
    summary="A customer's latest stored score, decision, warnings and grade history",
)
def customer(customer_id: CustomerId, request: Request, _: Principal = Depends(require("read"))):
    request.state.target = customer_id
    service = _service(request)
    return lookup.customer_view(service.engine, service.config.model_name, customer_id)


@router.post(
    "/customers/{customer_id}/override",
    response_model=OverrideRecorded,
    summary="Override the recommended limit (and term) of the customer's latest decision",
)
def override(
    customer_id: CustomerId,
    body: OverrideRequest,
    request: Request,
    who: Principal = Depends(require("act")),
):
    request.state.target = customer_id
    found = review.override_limit(
        _service(request).engine,
        customer_id,
        body.limit,
        f"api:{who.key_name}",
        body.reason,
        term_days=body.term_days,
    )
    return asdict(found)


@router.get("/warnings", response_model=WarningList, summary="Stored warnings, newest first")
def warnings(
    request: Request,
    level: Annotated[list[LEVELS] | None, Query(description="only these levels")] = None,
    status: Annotated[
        list[Literal[STATUSES]] | None,  # type: ignore[valid-type]
        Query(description="these statuses (default: open and acknowledged)"),
    ] = None,
    customer_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    _: Principal = Depends(require("read")),
):
    engine = _service(request).engine
    found = lookup.warnings_view(
        engine,
        tuple(status) if status else ("open", "acknowledged"),
        tuple(level) if level else None,
        customer_id,
        limit,
    )
    return {"warnings": found}


def _act(action, request: Request, warning_id: int, note: Note, who: Principal) -> dict:
    request.state.target = str(warning_id)
    engine = _service(request).engine
    lookup.warning_view(engine, warning_id)  # 404 before anything is tried
    action(engine, warning_id, f"api:{who.key_name}", note.note)
    return lookup.warning_view(engine, warning_id)


@router.post(
    "/warnings/{warning_id}/acknowledge",
    response_model=StoredWarning,
    summary="Acknowledge a warning, with a note",
)
def acknowledge(
    warning_id: WarningId, note: Note, request: Request, who: Principal = Depends(require("act"))
):
    return _act(review.acknowledge_warning, request, warning_id, note, who)


@router.post(
    "/warnings/{warning_id}/resolve",
    response_model=StoredWarning,
    summary="Resolve a warning, with a note",
)
def resolve(
    warning_id: WarningId, note: Note, request: Request, who: Principal = Depends(require("act"))
):
    return _act(review.resolve_warning, request, warning_id, note, who)


@router.get("/model", response_model=ModelCard, summary="The champion's card")
def model(request: Request, _: Principal = Depends(require("read"))):
    loaded = _service(request).holder.loaded
    if loaded is None:
        raise Unavailable("no champion model is loaded", hint="see GET /ready for why")
    return loaded.card | {"loaded_from": loaded.card.get("loaded_from", "registry")}


@router.get("/monitoring", response_model=MonitoringView, summary="The latest monitoring verdicts")
def monitoring(request: Request, _: Principal = Depends(require("read"))):
    service = _service(request)
    return lookup.latest_monitoring(service.engine, service.config.model_name)


@router.post("/admin/reload", summary="Check the registry now and load a new champion")
def reload(request: Request, _: Principal = Depends(require("admin"))):
    holder = _service(request).holder
    holder.check(force=True)
    service = _service(request)
    service.keyring.refresh()
    return service.ready()


@router.get("/admin/keys", summary="API keys (never the keys themselves)")
def keys(request: Request, _: Principal = Depends(require("admin"))):
    found = list_keys(_service(request).engine)
    return {"keys": [_key(k) for k in found]}


def _key(key) -> dict:
    out = {name: getattr(key, name) for name in ("name", "role", "prefix", "created_by")}
    for name in ("created_at", "revoked_at", "last_used_at"):
        value = getattr(key, name)
        out[name] = None if value is None else f"{value:%Y-%m-%dT%H:%M:%S}"
    return out


@router.post("/admin/keys/{name}/revoke", summary="Revoke an API key")
def revoke(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")],
    request: Request,
    who: Principal = Depends(require("admin")),
):
    service = _service(request)
    found = revoke_key(service.engine, name, f"api:{who.key_name}")
    service.keyring.refresh()
    return _key(found)
