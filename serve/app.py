"""The scoring service: `create_app(config)` builds the FastAPI app (API under /v1, the web page
at /, /health and /ready), its model holder, key ring and audit writer.

Every request gets a request id; every /v1 call and page request writes an audit row: who,
when, what (method and route template), the target id, the model version, a hash of the body,
the status and outcome. Bodies over the limit are refused with 413 before they are read whole.
Errors are one JSON shape (`serve.schemas.ErrorResponse`); nothing a client sends gives a 500.
Application logs carry request ids, routes and statuses, never customer data.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.master_scale import MasterScale
from pipelines.errors import CreditriskError
from pipelines.store.queries import list_runs
from pipelines.usecases.access import AuditEntry, AuditWriter, KeyRing
from pipelines.usecases.online import RecordsRejected
from serve.api import BODY_DEFINITIONS, router
from serve.auth import API_KEY_HEADER, AuthError
from serve.holder import ModelHolder
from serve.schemas import Health, Ready
from serve.web import STATIC_DIR, error_page
from serve.web import router as web_router

log = logging.getLogger("creditrisk.serve")
OUTCOMES = {2: "ok", 3: "redirect", 4: "refused", 5: "failed"}
UNAUDITED = ("/health", "/ready", "/openapi.json", "/favicon.ico")
UNAUDITED_PREFIXES = ("/static/", "/docs", "/redoc")


@dataclass(frozen=True)
class ServeConfig:
    """What the service needs: where the store and registry are, which model, the limits."""

    results_url: str
    tracking_uri: str
    model_name: str
    cache_dir: Path
    max_batch: int = 100
    max_body_bytes: int = 1_000_000
    check_seconds: float = 60.0
    key_refresh_seconds: float = 5.0
    cookie_secure: bool = True


class Service:
    """The app's parts, shared by the API and the web page."""

    def __init__(
        self,
        config: ServeConfig,
        engine,
        holder: ModelHolder,
        scale: MasterScale,
        book_dir: Path | None = None,
    ):
        self.config, self.engine, self.holder = config, engine, holder
        self.scale = scale  # the grades, best first, as the decisions use them
        self.book_dir = book_dir  # the book the page reads raw rows from
        self.keyring = KeyRing(engine, config.key_refresh_seconds)
        self.audit = AuditWriter(engine)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def ready(self) -> dict:
        status, loaded = self.holder.status, self.holder.loaded
        model = None
        if loaded is not None:
            model = {"name": self.config.model_name, "version": loaded.card["version"]}
        return {
            "status": status.state,
            "model": model,
            "reasons": status.reasons,
            "checked_at": status.checked_at,
        }

    def start(self) -> None:
        self.holder.start()
        self.warm()
        gc.collect()
        gc.freeze()  # what start-up built (model, book) lives on: collections skip it
        for name, target in (("champion-check", self._follow), ("key-refresh", self._keys)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def warm(self) -> None:
        """Compute the book's context of the stored runs' dates now, not on a first request."""
        loaded = self.holder.loaded
        if loaded is None:
            return
        runs = list_runs(self.engine, self.config.model_name)
        for as_of in runs["as_of"].head(12):
            loaded.online.context(pd.Timestamp(as_of))

    def _follow(self) -> None:
        while not self._stop.wait(self.config.check_seconds):
            self.holder.check()

    def _keys(self) -> None:
        """Reload the keys twice per refresh period, so that no request finds the view stale and
        waits for the store (a revoked key still stops within the period)."""
        while not self._stop.wait(self.keyring.refresh_seconds / 2):
            try:
                self.keyring.refresh()
            except CreditriskError as exc:  # the store away: keep the view, try again
                log.warning("API keys not reloaded, keeping %d known: %s", len(self.keyring), exc)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.audit.close()


def _error(
    status: int, kind: str, reason: str, request_id: str, hint=None, errors=(), headers=None
):
    body = {
        "kind": kind,
        "reason": reason,
        "hint": hint,
        "errors": list(errors),
        "request_id": request_id,
    }
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "-")


def _loc(parts) -> list:
    return [p if isinstance(p, int) else str(p) for p in parts]


def _wants_page(request: Request) -> bool:
    """A person's browser asking for a page (not the API, not a script)."""
    path = request.url.path
    accept = request.headers.get("accept", "")
    return not path.startswith(("/v1", "/health", "/ready")) and "text/html" in accept


def install_errors(app: FastAPI) -> None:
    """Every error as `ErrorResponse`: typed errors by their status, validation 422 by field."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": _loc(e.get("loc", ())), "reason": e.get("msg", "invalid")} for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "reason": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return _error(
            422,
            "bad input",
            f"{where}: {first['reason']}",
            _request_id(request),
            "correct the fields listed in errors",
            errors,
        )

    @app.exception_handler(RecordsRejected)
    async def _rejected(request: Request, exc: RecordsRejected):
        errors = [
            {"loc": [p["table"], p["key"], p["column"]], "reason": p["reason"]}
            for p in exc.problems
        ]
        return _error(422, exc.kind, exc.message, _request_id(request), exc.hint, errors)

    @app.exception_handler(CreditriskError)
    async def _typed(request: Request, exc: CreditriskError):
        errors = [{"loc": [exc.field], "reason": exc.reason}] if exc.field else []
        return _error(
            exc.http_status, exc.kind, exc.message, _request_id(request), exc.hint, errors
        )

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError):
        kind = "unauthenticated" if exc.status == 401 else "forbidden"
        return _error(
            exc.status, kind, exc.reason, _request_id(request), exc.hint, headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if _wants_page(request):
            reason = str(exc.detail) if exc.status_code != 404 else "there is no such page"
            return error_page(
                request, None, exc.status_code, str(exc.detail), reason, "go back to the start page"
            )
        status, detail, errors, hint = exc.status_code, str(exc.detail), [], None
        if status == 400:  # FastAPI could not read the body (not UTF-8, say): bad input too
            status, errors = 422, [{"loc": ["body"], "reason": detail}]
            hint = "send a JSON body in UTF-8"
        elif status == 413:
            hint = "send fewer customers per request"
        kind = {404: "not found", 405: "method not allowed", 413: "too large", 422: "bad input"}
        return _error(
            status,
            kind.get(status, "http error"),
            detail,
            _request_id(request),
            hint,
            errors,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.exception(
            "internal error on %s %s (request %s)",
            request.method,
            request.scope.get("route_path", "?"),
            _request_id(request),
        )
        return _error(
            500,
            "internal",
            "internal error: this is a bug in creditrisk",
            _request_id(request),
            "report the request id",
        )


class BodyTooLarge(StarletteHTTPException):
    """Raised while the body is read, past the limit: the app's handler answers 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is over the limit of {limit:,} bytes")


class AccessMiddleware:
    """Request id, body limit (413), body hash and one audit row per /v1 call or page action."""

    def __init__(self, app, service_of):
        self.app, self.service_of = app, service_of

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        service: Service = self.service_of()
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        limit = service.config.max_body_bytes
        length = dict(scope.get("headers") or []).get(b"content-length")
        digest, seen, status = hashlib.sha256(), [0], [500]
        if length is not None and (not length.isdigit() or int(length) > limit):
            status[0] = 413
            await _too_large(send, request_id, limit)
        else:

            async def counted():
                message = await receive()
                if message["type"] == "http.request":
                    chunk = message.get("body", b"")
                    seen[0] += len(chunk)
                    if seen[0] > limit:
                        raise BodyTooLarge(limit)
                    digest.update(chunk)
                return message

            async def sending(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode()))
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await self.app(scope, counted, sending)
            except BodyTooLarge:
                status[0] = 413
                await _too_large(send, request_id, limit)
        self._audit(service, scope, state, status[0], digest if seen[0] else None, started)

    @staticmethod
    def _audit(service, scope, state, status, digest, started) -> None:
        path = scope.get("path", "")
        method = scope.get("method", "")
        if path in UNAUDITED or path.startswith(UNAUDITED_PREFIXES):
            return
        route = scope.get("route")
        template = getattr(route, "path", None) or path[:200]
        principal = state.get("principal")
        if principal is None:  # refused before its key was asked for (a 422, a 413): who sent it
            given = dict(scope.get("headers") or []).get(API_KEY_HEADER.lower().encode())
            principal = service.keyring.check(given.decode("latin-1")) if given else None
        entry = AuditEntry(
            at=dt.datetime.now(dt.UTC),
            request_id=state["request_id"],
            key_name=getattr(principal, "key_name", None),
            role=getattr(principal, "role", None),
            method=method,
            path=template,
            target=state.get("target"),
            status=status,
            outcome=OUTCOMES.get(status // 100, "failed"),
            model_version=state.get("model_version"),
            input_sha256=None if digest is None else digest.hexdigest(),
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        service.audit.record(entry)
        log.info(
            "%s %s %s %d %.1f ms", state["request_id"], method, template, status, entry.duration_ms
        )


async def _too_large(send, request_id: str, limit: int) -> None:
    response = _error(
        413,
        "too large",
        f"the request body is over the limit of {limit:,} bytes",
        request_id,
        "send fewer customers per request",
        headers={"x-request-id": request_id},
    )
    await response({"type": "http"}, _no_body, send)


async def _no_body():
    return {"type": "http.disconnect"}


def create_app(config: ServeConfig, service: Service | None = None, build_service=None) -> FastAPI:
    """The app; ``build_service()`` (called at start) makes its `Service` unless one is given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.service is None:
            app.state.service = build_service()
        app.state.keyring = app.state.service.keyring
        app.state.service.start()
        try:
            yield
        finally:
            app.state.service.stop()

    app = FastAPI(
        title="creditrisk scoring service",
        version="1",
        summary="Explained default-probability scores, ratings, credit policy and early warnings.",
        description=(
            "Every /v1 call needs an API key in the `X-API-Key` header (make one with "
            "`creditrisk keys create NAME --role ROLE`). Roles: viewer (read), scorer (score), "
            "officer (act on warnings), admin (reload the model, manage keys); each role may do "
            "what the ones before it may."
        ),
        lifespan=lifespan,
    )
    app.state.service = service
    if service is not None:
        app.state.keyring = service.keyring
    install_errors(app)

    app.include_router(router)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", response_model=Health, summary="The process answers")
    def health():
        return {"status": "ok"}

    @app.get(
        "/ready",
        response_model=Ready,
        summary="Ready to score, degraded, or unavailable",
        responses={503: {"model": Ready}},
    )
    def ready(request: Request):
        found = request.app.state.service.ready()
        return JSONResponse(found, status_code=200 if found["status"] != "unavailable" else 503)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in BODY_DEFINITIONS.items():
                components.setdefault(name, definition)
        return app.openapi_schema

    app.openapi = openapi
    app.add_middleware(AccessMiddleware, service_of=lambda: app.state.service)
    return app
