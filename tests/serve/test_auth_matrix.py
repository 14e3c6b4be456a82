"""The auth matrix (issue 12, Tests): every /v1 endpoint with no key, a wrong key, a revoked key
and each role: 401 with a challenge for the first three, 403 or success by the role rules."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from pipelines.usecases.access import ACTIONS, ROLES
from serve.payloads import customer_payload

CALLERS = ("no key", "wrong key", "revoked key", *ROLES)
WRONG_KEY = "cr_0badc0de_" + "x" * 43

# the action each /v1 route needs (pipelines/usecases/access.ACTIONS); a new route fails
# test_every_route_is_in_the_matrix until it is listed here
ROUTE_ACTIONS = {
    ("POST", "/v1/score"): "score",
    ("POST", "/v1/score/features"): "score",
    ("POST", "/v1/score/batch"): "score",
    ("GET", "/v1/customers/{customer_id}"): "read",
    ("POST", "/v1/customers/{customer_id}/override"): "act",
    ("GET", "/v1/warnings"): "read",
    ("POST", "/v1/warnings/{warning_id}/acknowledge"): "act",
    ("POST", "/v1/warnings/{warning_id}/resolve"): "act",
    ("GET", "/v1/model"): "read",
    ("GET", "/v1/monitoring"): "read",
    ("POST", "/v1/admin/reload"): "admin",
    ("GET", "/v1/admin/keys"): "admin",
    ("POST", "/v1/admin/keys/{name}/revoke"): "admin",
}


def v1_routes():
    from serve.app import ServeConfig, create_app

    config = ServeConfig("sqlite://", "file:///nowhere", "m", cache_dir=".")
    app = create_app(config, service=None, build_service=lambda: None)  # routes only, not started
    return sorted(
        (method, path)
        for path, methods in _endpoints(app.routes)
        if path.startswith("/v1")
        for method in methods
    )


def _endpoints(routes):
    """(path, methods) of every endpoint, within included routers too (FastAPI 0.150 keeps an
    included router as one route of the app)."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from _endpoints(route.effective_candidates())
        elif getattr(route, "methods", None) and getattr(route, "path", None):
            yield route.path, sorted(route.methods - {"HEAD"})


ROUTES = v1_routes()


def test_every_route_is_in_the_matrix():
    assert set(ROUTES) == set(ROUTE_ACTIONS)


@pytest.fixture(scope="module")
def book(world):
    from features.io import read_book

    return read_book(world.book_dir)


@pytest.fixture(scope="module")
def targets(world, book):
    """What the calls act on: a scored customer at the latest run, warnings to act on (one per
    route and caller), keys the admin may revoke."""
    from pipelines.store.db import open_store
    from pipelines.store.queries import list_runs, read_scores, read_warnings
    from pipelines.usecases.access import create_key

    engine = open_store(world.results_url, create=False)
    try:
        run = list_runs(engine, world.model_name).iloc[0]
        scored = read_scores(engine, int(run["id"]))
        warnings = read_warnings(engine, ("open",), None, None)
        names = {}
        for caller in CALLERS:
            name = f"matrix-{caller.replace(' ', '-')}"
            create_key(engine, name, "viewer", "tests")
            names[caller] = name
    finally:
        engine.dispose()
    ids = iter(int(i) for i in warnings["id"])
    acting = [r for r in ROUTE_ACTIONS if "warning_id" in r[1]]
    warning_of = {
        (route, caller): next(ids) for route, caller in itertools.product(acting, CALLERS)
    }
    return {
        "as_of": pd.Timestamp(run["as_of"]),
        "customer": str(scored["customer_id"].iloc[0]),
        "warning": warning_of,
        "key_name": names,
    }


def _call(route, caller, book, targets):
    """(path, json body) of a valid call of the route."""
    method, template = route
    as_of, cid = targets["as_of"], targets["customer"]
    path = template.replace("{customer_id}", cid)
    if "{warning_id}" in template:
        path = path.replace("{warning_id}", str(targets["warning"][(route, caller)]))
    path = path.replace("{name}", targets["key_name"][caller])
    body = None
    if template == "/v1/score":
        body = customer_payload(book, cid, as_of)
    elif template == "/v1/score/batch":
        body = {"as_of": f"{as_of.date()}", "customers": [customer_payload(book, cid)]}
    elif template == "/v1/score/features":
        body = {"as_of": f"{as_of.date()}", "customer_id": cid, "features": {}}
    elif template.endswith("/override"):
        body = {"limit": 1000.0, "term_days": 30, "reason": "auth matrix"}
    elif template.startswith("/v1/warnings/"):
        body = {"note": "auth matrix"}
    return method, path, body


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_auth_matrix(client, keys, book, targets, route, caller):
    method, path, body = _call(route, caller, book, targets)
    headers = {}
    if caller == "wrong key":
        headers["X-API-Key"] = WRONG_KEY
    elif caller == "revoked key":
        headers["X-API-Key"] = keys["revoked"]
    elif caller in ROLES:
        headers["X-API-Key"] = keys[caller]
    response = client.request(method, path, json=body, headers=headers)
    assert response.headers.get("x-request-id")
    error = response.json().get("error") if response.status_code >= 400 else None
    if caller not in ROLES:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "ApiKey"
        assert error["kind"] == "unauthenticated"
        return
    action = ROUTE_ACTIONS[route]
    may = ROLES.index(caller) >= ROLES.index(ACTIONS[action])
    if not may:
        assert response.status_code == 403, response.text
        assert error["kind"] == "forbidden"
        assert "www-authenticate" not in response.headers
    else:
        assert 200 <= response.status_code < 300, response.text
