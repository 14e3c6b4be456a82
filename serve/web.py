"""The web page for credit staff: sign in with an API key, look up a customer (stored score,
decision, reasons, grade history, warnings with acknowledge and resolve), score a customer now
from the book's raw rows, the watch list and the model card. Server-rendered (Jinja2), no
JavaScript; charts are inline SVG computed here.

Sessions live in memory on the server: a random id in an HttpOnly, SameSite=Strict cookie names
the key's name and role, a CSRF token and the session's expiry (8 hours, 30 minutes idle); the
key itself is never stored. Every POST must come from this host (Origin, else Referer) and, once
signed in, carry the session's CSRF token. Typed errors render as an HTML page with the reason
and the hint; nothing here answers with JSON or a traceback.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pandas as pd
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from pydantic import ValidationError

from models.master_scale import MasterScale
from pipelines.errors import BadInput, CreditriskError, NotFound, Unavailable
from pipelines.store.lifecycle import STATUSES
from pipelines.usecases import lookup, review
from pipelines.usecases.access import allowed
from serve.api import score_customers
from serve.auth import Principal
from serve.payloads import CHILD_TABLES, customer_payload
from serve.schemas import CustomerData

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
COOKIE = "creditrisk_session"
SESSION_SECONDS = 8 * 3600
IDLE_SECONDS = 30 * 60
CUSTOMER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
WATCH_LEVELS = ("red", "amber")
WATCH_STATUSES = tuple(STATUSES)
DEFAULT_STATUSES = ("open", "acknowledged")
MAX_NOTE = 2000
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
ACTION_WORDS = {"read": "read", "score": "score customers", "act": "act on warnings"}

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")


# ---------------------------------------------------------------- sessions


@dataclass
class Session:
    """A signed-in person: the key's name and role, never the key."""

    id: str
    key_name: str
    role: str
    csrf: str
    started: float
    seen: float = field(default=0.0)

    @property
    def principal(self) -> Principal:
        return Principal(self.key_name, self.role)

    def may(self, action: str) -> bool:
        return allowed(self.role, action)


class Sessions:
    """Sessions in memory, by random id; expired at 8 hours or after 30 idle minutes."""

    def __init__(self, lifetime: float = SESSION_SECONDS, idle: float = IDLE_SECONDS, clock=None):
        self.lifetime, self.idle = lifetime, idle
        self.clock = clock or time.monotonic
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, key_name: str, role: str) -> Session:
        now = self.clock()
        found = Session(secrets.token_urlsafe(32), key_name, role, secrets.token_urlsafe(32), now)
        found.seen = now
        with self._lock:
            self._drop_expired(now)
            self._by_id[found.id] = found
        return found

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self.clock()
        with self._lock:
            found = self._by_id.get(session_id)
            if found is None:
                return None
            if self._expired(found, now):
                del self._by_id[session_id]
                return None
            found.seen = now
            return found

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.started > self.lifetime or now - s.seen > self.idle

    def _drop_expired(self, now: float) -> None:
        for sid in [sid for sid, s in self._by_id.items() if self._expired(s, now)]:
            del self._by_id[sid]


_sessions_lock = threading.Lock()


def sessions_of(request: Request) -> Sessions:
    """The app's session store (made on first use)."""
    state = request.app.state
    with _sessions_lock:
        if getattr(state, "web_sessions", None) is None:
            state.web_sessions = Sessions()
        return state.web_sessions


def _session(request: Request) -> Session | None:
    sessions = sessions_of(request)
    found = sessions.get(request.cookies.get(COOKIE))
    if found is not None and not request.app.state.service.keyring.active(found.key_name):
        sessions.close(found.id)  # the key was revoked: so is the session
        return None
    if found is not None:
        request.state.principal = found.principal
    return found


# ---------------------------------------------------------------- cross-site checks


class Forbidden(Exception):
    """A POST that is refused: from another site, without the form's token, or a role's."""

    def __init__(self, reason: str, hint: str):
        self.reason, self.hint = reason, hint
        super().__init__(reason)


def same_host(request: Request) -> bool:
    """The POST comes from a page of this host: its Origin, else its Referer, names the host."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        return urlsplit(origin).netloc == host
    referer = request.headers.get("referer")
    return referer is not None and urlsplit(referer).netloc == host


def check_post(request: Request, session: Session | None, token: str | None) -> None:
    """`Forbidden` unless the POST is from this host and, when signed in, carries the token."""
    if not same_host(request):
        raise Forbidden(
            "the form was not sent from this site",
            "open the page again from the service's own address and send the form from there",
        )
    if session is not None and not hmac.compare_digest(
        (token or "").encode(), session.csrf.encode()
    ):
        raise Forbidden(
            "the form's security token is missing or out of date",
            "reload the page and send the form again",
        )


def check_role(session: Session, action: str) -> None:
    if not session.may(action):
        raise Forbidden(
            f"your key {session.key_name!r} has role {session.role!r}, which may not "
            f"{ACTION_WORDS.get(action, action)}",
            "sign in with a key whose role allows it",
        )


# ---------------------------------------------------------------- formatting


def fmt_pd(value: Any) -> str:
    """A probability as a percentage: 2 decimals, 3 below 1 %."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    pct = float(value) * 100
    return f"{pct:.3f} %" if pct < 1 else f"{pct:.2f} %"


def fmt_amount(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):,.0f}"


def fmt_number(value: Any) -> str:
    """A value as a person reads it: thousands separators, at most 4 significant decimals."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        return f"{value:.4g}" if abs(value) >= 1e-4 else f"{value:.2e}"
    return str(value)


def fmt_date(value: Any) -> str:
    if value is None:
        return "–"
    return str(value)[:10]


ACRONYMS = {"pd": "PD", "dpd": "DPD", "ebit": "EBIT", "auc": "AUC", "ks": "KS", "psi": "PSI"}


def words(name: Any) -> str:
    """A snake_case name in words: ``hand_to_collections`` -> ``hand to collections``."""
    return " ".join(ACRONYMS.get(w, w) for w in str(name).split("_"))


def fact(name: Any, value: Any) -> str:
    """One fact of a warning's evidence: PDs as percentages, the rest as `plain` text."""
    is_pd = str(name) == "pd" or str(name).endswith("_pd")
    if is_pd and isinstance(value, int | float) and not isinstance(value, bool):
        return fmt_pd(value)
    return plain(value)


def plain(value: Any) -> str:
    """Any value as text without JSON's braces: mappings as ``key: value`` pairs."""
    if isinstance(value, dict):
        return "; ".join(f"{words(k)}: {plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", value):
        return fmt_date(value)
    return fmt_number(value) if not isinstance(value, str) else value


def grade_tones(scale: MasterScale) -> dict[str, str]:
    """Each grade's colour class by its place on the master scale (g1 best ... g8), the default
    grade ``gd``."""
    last = len(scale.grades) - 1
    tones = {g: f"g{1 + round(7 * i / max(last, 1))}" for i, g in enumerate(scale.grades)}
    return tones | {scale.default_grade: "gd"}


@pass_context
def grade_tone(context, grade: str) -> str:
    return context["tones"].get(str(grade), "g4")


templates.env.filters.update(
    pd=fmt_pd,
    amount=fmt_amount,
    number=fmt_number,
    date=fmt_date,
    words=words,
    plain=plain,
    fact=fact,
    tone=grade_tone,
)


# ---------------------------------------------------------------- charts


def reasons_chart(reasons: list[dict[str, Any]], width: int = 760) -> dict[str, Any]:
    """Horizontal bars of the reasons' contributions (log-odds), one row each: the plain text
    and the customer's value above the bar, the contribution at its end; zero in the middle when
    some reasons lower the risk."""
    rows = [r for r in reasons if r.get("contribution") is not None]
    row_h, top, label_w = 50, 8, 60
    span = max((abs(float(r["contribution"])) for r in rows), default=0.0) or 1.0
    negative = any(float(r["contribution"]) < 0 for r in rows)
    plot_w = width - label_w
    zero = plot_w / 2 if negative else 0.0
    scale = (plot_w / 2 if negative else plot_w) / span
    bars = []
    for i, r in enumerate(rows):
        c = float(r["contribution"])
        y = top + i * row_h
        length = max(abs(c) * scale, 2.0)
        x = zero if c >= 0 else zero - length
        text = str(r.get("text") or words(r.get("feature", "")))
        bars.append(
            {
                "y_text": y + 14,
                "y_bar": y + 22,
                "x": round(x, 1),
                "w": round(length, 1),
                "label": text if len(text) <= 84 else text[:82] + "…",
                "full": text,
                "value": plain(r.get("value")),
                "contribution": f"{c:+.2f}",
                "x_num": round(x + length + 6 if c >= 0 else x - 6, 1),
                "anchor": "start" if c >= 0 else "end",
                "tone": "up" if c >= 0 else "down",
            }
        )
    return {
        "width": width,
        "height": top + len(rows) * row_h + 4,
        "zero": round(zero, 1),
        "bars": bars,
        "bar_h": 16,
    }


def grade_chart(
    history: list[dict[str, Any]], scale: MasterScale, width: int = 480
) -> dict[str, Any] | None:
    """A step chart of the grades over the as-of dates (oldest left, better grades up): the
    master scale's grades from one better than the best seen to one worse than the worst."""
    if not history:
        return None
    order = [*scale.grades, scale.default_grade]
    seen = [order.index(h["grade"]) for h in history if h["grade"] in order]
    low, high = max(min(seen, default=0) - 1, 0), min(max(seen, default=0) + 1, len(order) - 1)
    grades = order[low : high + 1]
    tones = grade_tones(scale)
    left, right, top, row = 44, 40, 12, 22
    height = top + row * (len(grades) - 1) + 40
    y_of = {g: top + i * row for i, g in enumerate(grades)}
    n = len(history)
    step = (width - left - right) / max(n - 1, 1)
    points = []
    for i, h in enumerate(history):
        x = left + (i * step if n > 1 else (width - left - right) / 2)
        points.append(
            {
                "x": round(x, 1),
                "y": y_of[h["grade"]],
                "grade": h["grade"],
                "tone": tones.get(h["grade"], "g4"),
                "date": fmt_date(h["as_of"]),
                "pd": fmt_pd(h.get("pd")),
            }
        )
    path = []
    for i, p in enumerate(points):
        if i == 0:
            path.append(f"M{p['x']},{p['y']}")
        else:
            path.append(f"H{p['x']}V{p['y']}")
    every = max(1, math.ceil(n / 6))
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "axis_y": height - 22,
        "rows": [{"grade": g, "y": y} for g, y in y_of.items()],
        "points": points,
        "path": "".join(path),
        "ticks": [p for i, p in enumerate(points) if i % every == 0 or i == n - 1],
    }


# ---------------------------------------------------------------- pages


def _service(request: Request):
    return request.app.state.service


def _render(
    request: Request,
    name: str,
    context: dict[str, Any],
    session: Session | None,
    status: int = 200,
) -> HTMLResponse:
    service = _service(request)
    readiness = service.ready()
    base = {
        "session": session,
        "readiness": readiness,
        "degraded": readiness["status"] != "ready",
        "may_score": bool(session and session.may("score")),
        "may_act": bool(session and session.may("act")),
        "tones": grade_tones(service.scale),
    }
    response = templates.TemplateResponse(request, name, base | context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(
    request: Request,
    session: Session | None,
    status: int,
    title: str,
    reason: str,
    hint: str | None = None,
    problems: list[tuple[str, str]] | None = None,
) -> HTMLResponse:
    """A readable error page: what happened, why, what to do, and the request id."""
    context = {
        "status": status,
        "title": title,
        "reason": reason,
        "hint": hint,
        "problems": problems or [],
        "request_id": getattr(request.state, "request_id", "-"),
    }
    return _render(request, "error.html", context, session, status)


TITLES = {404: "Not found", 409: "Not possible now", 422: "Check the input", 503: "Unavailable"}


def typed_page(request: Request, session: Session | None, exc: CreditriskError) -> HTMLResponse:
    status = exc.http_status if 400 <= exc.http_status < 600 else 400
    problems = [
        (" / ".join(str(p) for p in (q["table"], q["key"], q["column"]) if p), q["reason"])
        for q in getattr(exc, "problems", [])
    ]
    reason = f"{exc.where}: {exc.reason}" if exc.where else exc.reason
    return error_page(
        request, session, status, TITLES.get(status, "Error"), reason, exc.hint, problems
    )


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def _guarded(request: Request, handler, *, post: bool = False, token: str | None = None):
    """Run a page: sign-in required (else to /login), the POST checks, typed errors as pages."""
    session = _session(request)
    if session is None:
        if post and not same_host(request):
            return error_page(
                request,
                None,
                403,
                "Refused",
                "the form was not sent from this site",
                "open the page from the service's own address",
            )
        return _to_login(request)
    try:
        if post:
            check_post(request, session, token)
        return handler(session)
    except Forbidden as exc:
        return error_page(request, session, 403, "Refused", exc.reason, exc.hint)
    except CreditriskError as exc:
        return typed_page(request, session, exc)


def _check_customer_id(customer_id: str) -> str:
    customer_id = (customer_id or "").strip()
    if not CUSTOMER_ID.fullmatch(customer_id):
        raise BadInput(
            f"{customer_id[:80]!r} is not a customer id",
            field="customer id",
            hint="use 1 to 64 letters, digits, '_', '.', ':' or '-', e.g. C0001234",
        )
    return customer_id


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request):
    if _session(request) is not None:
        return RedirectResponse("/", status_code=303)
    return _render(request, "login.html", {"problem": None}, None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, api_key: str = Form("")):
    if not same_host(request):
        return error_page(
            request,
            None,
            403,
            "Refused",
            "the sign-in form was not sent from this site",
            "open the sign-in page from the service's own address",
        )
    key = _service(request).keyring.check(api_key.strip()[:200])
    if key is None:
        problem = "That key is not valid, or it was revoked." if api_key else "Enter your key."
        return _render(request, "login.html", {"problem": problem}, None, 401)
    request.state.principal = Principal(key.name, key.role)
    session = sessions_of(request).open(key.name, key.role)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=SESSION_SECONDS,
        path="/",
        secure=_service(request).config.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")):
    def handler(session: Session):
        sessions_of(request).close(session.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return _guarded(request, handler, post=True, token=csrf)


@router.get("/", response_class=HTMLResponse)
def home(request: Request):
    def handler(session: Session):
        check_role(session, "read")
        recent = lookup.warnings_view(
            _service(request).engine, DEFAULT_STATUSES, WATCH_LEVELS, None, 10
        )
        return _render(request, "home.html", {"recent": recent}, session)

    return _guarded(request, handler)


@router.get("/lookup")
def find(request: Request, customer_id: str = Query("")):
    def handler(session: Session):
        found = _check_customer_id(customer_id)
        return RedirectResponse(f"/customers/{found}", status_code=303)

    return _guarded(request, handler)


def _customer_context(request: Request, customer_id: str) -> dict[str, Any]:
    service = _service(request)
    request.state.target = customer_id
    view = lookup.customer_view(service.engine, service.config.model_name, customer_id)
    latest = view["latest"]
    return {
        "view": view,
        "latest": latest,
        "chart": reasons_chart(latest["reasons"]),
        "history": grade_chart(view["grade_history"], service.scale),
        "open_warnings": [w for w in view["warnings"] if w["status"] != "resolved"],
        "closed_warnings": [w for w in view["warnings"] if w["status"] == "resolved"],
        "default_as_of": fmt_date(latest["as_of"]),
        "live": None,
        "done": None,
    }


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer(request: Request, customer_id: str, done: str = "", warning: str = ""):
    def handler(session: Session):
        check_role(session, "read")
        found = _check_customer_id(customer_id)
        context = _customer_context(request, found)
        if done in ("acknowledged", "resolved") and warning.isdigit():
            context["done"] = f"Warning {warning} {done}."
        return _render(request, "customer.html", context, session)

    return _guarded(request, handler)


def read_book_rows(book_dir: Path, customer_id: str) -> dict[str, pd.DataFrame]:
    """The customer's rows of each table of the book (Parquet, read with a filter)."""
    tables = {}
    for name in ("customers", *CHILD_TABLES):
        path = Path(book_dir) / f"{name}.parquet"
        if not path.exists():
            if name == "customers":
                raise NotFound(
                    f"no book at {book_dir}", hint="run `creditrisk run` to make the book"
                )
            continue
        tables[name] = pd.read_parquet(path, filters=[("customer_id", "==", customer_id)])
    return tables


def _book_dir(request: Request) -> Path:
    book_dir = _service(request).book_dir
    if book_dir is None:
        raise Unavailable(
            "the service was started without a book, so it cannot score from raw rows",
            hint="start the service with the book of the batch runs (--book)",
        )
    return Path(book_dir)


def score_from_book(request: Request, customer_id: str, as_of: dt.date) -> dict[str, Any]:
    """Score the customer now from the book's raw rows, by the /v1/score code."""

    tables = read_book_rows(_book_dir(request), customer_id)
    try:
        body = customer_payload(tables, customer_id)
    except KeyError:
        raise NotFound(
            f"customer {customer_id!r} is not in the book",
            key=customer_id,
            hint="score customers of the book the service was started with",
        ) from None
    try:
        data = CustomerData.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BadInput(
            f"the book's rows of {customer_id!r} break the data contract: {where}: {first['msg']}",
            hint="correct the book, or score the customer with POST /v1/score",
        ) from None
    online, decisions = score_customers(request, [data], as_of)
    d = decisions[0]
    return {
        "as_of": fmt_date(d.as_of),
        "pd": d.pd,
        "score": d.score,
        "grade": d.grade,
        "policy": d.policy,
        "reasons": d.reasons,
        "warning": d.warning,
        "in_default_since": d.in_default_since,
        "chart": reasons_chart(d.reasons),
        "model": f"{online.model_name} v{online.model_version}",
    }


def _as_of(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat((text or "").strip())
    except ValueError:
        raise BadInput(
            f"{text[:40]!r} is not a date", field="as-of date", hint="write it YYYY-MM-DD"
        ) from None
    if not 1900 <= day.year <= 2200:
        raise BadInput(f"{day} is out of range", field="as-of date", hint="pick a recent date")
    return day


@router.post("/customers/{customer_id}/score", response_class=HTMLResponse)
def score_now(request: Request, customer_id: str, as_of: str = Form(""), csrf: str = Form("")):
    def handler(session: Session):
        check_role(session, "score")
        found = _check_customer_id(customer_id)
        when = _as_of(as_of)
        context = _customer_context(request, found)
        context["live"] = score_from_book(request, found, when)
        context["default_as_of"] = f"{when}"
        return _render(request, "customer.html", context, session)

    return _guarded(request, handler, post=True, token=csrf)


def _act(request: Request, warning_id: str, note: str, token: str, action, done: str):
    def handler(session: Session):
        check_role(session, "act")
        if not warning_id.isdigit() or not 1 <= int(warning_id) <= 2**62:
            raise BadInput(f"{warning_id[:40]!r} is not a warning id", field="warning id")
        request.state.target = warning_id
        text = note.strip()
        if not text:
            raise BadInput("a note is required", field="note", hint="say what you did and why")
        if len(text) > MAX_NOTE:
            raise BadInput(f"the note is over {MAX_NOTE} characters", field="note")
        engine = _service(request).engine
        found = lookup.warning_view(engine, int(warning_id))
        action(engine, int(warning_id), f"web:{session.key_name}", text)
        query = urlencode({"done": done, "warning": warning_id})
        target = f"/customers/{found['customer_id']}?{query}#warning-{warning_id}"
        return RedirectResponse(target, status_code=303)

    return _guarded(request, handler, post=True, token=token)


@router.post("/warnings/{warning_id}/acknowledge")
def acknowledge(request: Request, warning_id: str, note: str = Form(""), csrf: str = Form("")):
    return _act(request, warning_id, note, csrf, review.acknowledge_warning, "acknowledged")


@router.post("/warnings/{warning_id}/resolve")
def resolve(request: Request, warning_id: str, note: str = Form(""), csrf: str = Form("")):
    return _act(request, warning_id, note, csrf, review.resolve_warning, "resolved")


@router.get("/watchlist", response_class=HTMLResponse)
def watchlist(
    request: Request,
    level: list[str] = Query([]),
    status: list[str] = Query([]),
):
    def handler(session: Session):
        check_role(session, "read")
        levels = tuple(level) or WATCH_LEVELS
        statuses = tuple(status) or DEFAULT_STATUSES
        for values, allowed_values, name in (
            (levels, WATCH_LEVELS, "level"),
            (statuses, WATCH_STATUSES, "status"),
        ):
            unknown = sorted(set(values) - set(allowed_values))
            if unknown:
                raise BadInput(
                    f"unknown {name} {', '.join(v[:20] for v in unknown)}",
                    field=name,
                    hint=f"use {', '.join(allowed_values)}",
                )
        found = lookup.warnings_view(_service(request).engine, statuses, levels, None, 500)
        context = {
            "warnings": found,
            "levels": levels,
            "statuses": statuses,
            "all_levels": WATCH_LEVELS,
            "all_statuses": WATCH_STATUSES,
        }
        return _render(request, "watchlist.html", context, session)

    return _guarded(request, handler)


@router.get("/model", response_class=HTMLResponse)
def model(request: Request):
    def handler(session: Session):
        check_role(session, "read")
        loaded = _service(request).holder.loaded
        if loaded is None:
            raise Unavailable("no champion model is loaded", hint="see the service status above")
        card = loaded.card | {"loaded_from": loaded.card.get("loaded_from", "registry")}
        return _render(request, "model.html", {"card": card}, session)

    return _guarded(request, handler)


@router.get("/favicon.ico")
def favicon():
    return Response(status_code=204)
