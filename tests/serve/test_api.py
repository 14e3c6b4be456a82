"""The /v1 API (issue 12, section 4 Bad input, and the reads): 422 with field-level errors for
each kind of bad input, 413, 404, 409, the customer/warnings/model/monitoring reads, health and
readiness, one audit row per call, and logs without customer data."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time

import pandas as pd
import pytest

from serve.payloads import customer_payload
from serve.schemas import ErrorResponse, FeatureRequest, ScoreRequest


@pytest.fixture(scope="module")
def book(world):
    from features.io import read_book

    return read_book(world.book_dir)


@pytest.fixture(scope="module")
def engine(world):
    from pipelines.store.db import open_store

    engine = open_store(world.results_url, create=False)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def latest(engine, world):
    """The newest stored run and its scores (by customer)."""
    from pipelines.store.queries import list_runs, read_scores

    runs = list_runs(engine, world.model_name)
    run = runs.iloc[0]
    return run, read_scores(engine, int(run["id"])).set_index("customer_id"), runs


@pytest.fixture(scope="module")
def body(book, latest):
    """A valid /v1/score body: a scored customer with statements, repayments known at as_of."""
    run, scores, _ = latest
    as_of = pd.Timestamp(run["as_of"])
    statements = book["financial_statements"]
    has = set(statements.loc[statements["published_on"] < as_of, "customer_id"].astype(str))
    cid = next(c for c in scores.index if c in has)
    found = customer_payload(book, cid, as_of)
    assert found["financial_statements"] and found["repayments"]
    return found


def scorer(keys):
    return {"X-API-Key": keys["scorer"]}


def assert_error(response, status: int) -> dict:
    """The response is an `ErrorResponse` of this status, with its request id in the header."""
    assert response.status_code == status, response.text
    error = ErrorResponse.model_validate(response.json()).error
    assert response.headers["x-request-id"] == error.request_id
    return response.json()["error"]


def _set(body, path, value):
    out = copy.deepcopy(body)
    where = out
    for part in path[:-1]:
        where = where[part]
    where[path[-1]] = value
    return out


def _drop(body, path):
    out = copy.deepcopy(body)
    where = out
    for part in path[:-1]:
        where = where[part]
    del where[path[-1]]
    return out


def _duplicate_month(body):
    out = copy.deepcopy(body)
    out["repayments"].append(dict(out["repayments"][0]))
    return out


def _published_early(body):
    s = body["financial_statements"][0]
    day = (pd.Timestamp(s["period_end"]) - pd.Timedelta(days=1)).date()
    return _set(body, ["financial_statements", 0, "published_on"], f"{day}")


def _founded_late(body):
    day = (pd.Timestamp(body["customer"]["onboarded_on"]) + pd.Timedelta(days=1)).date()
    return _set(body, ["customer", "founded_on"], f"{day}")


def _not_first(body):
    month = pd.Timestamp(body["repayments"][0]["month"]) + pd.Timedelta(days=14)
    return _set(body, ["repayments", 0, "month"], f"{month.date()}")


def _before_onboarding(body):
    day = (pd.Timestamp(body["customer"]["onboarded_on"]) - pd.DateOffset(months=1)).date()
    return _set(body, ["as_of"], f"{day}")


# name: (make the bad body from a valid one, the loc an error must name)
BAD = {
    "string for a number": (
        lambda b: _set(b, ["repayments", 0, "credit_limit"], "1000"),
        ["body", "repayments", 0, "credit_limit"],
    ),
    "number for a date": (lambda b: _set(b, ["as_of"], 20240101), ["body", "as_of"]),
    "number for a text": (
        lambda b: _set(b, ["customer", "region"], 7),
        ["body", "customer", "region"],
    ),
    "missing customer": (lambda b: _drop(b, ["customer"]), ["body", "customer"]),
    "missing as_of": (lambda b: _drop(b, ["as_of"]), ["body", "as_of"]),
    "missing amount_paid": (
        lambda b: _drop(b, ["repayments", 0, "amount_paid"]),
        ["body", "repayments", 0, "amount_paid"],
    ),
    "negative days past due": (
        lambda b: _set(b, ["repayments", 0, "days_past_due"], -1),
        ["body", "repayments", 0, "days_past_due"],
    ),
    "negative revenue": (
        lambda b: _set(b, ["financial_statements", 0, "revenue"], -5.0),
        ["body", "financial_statements", 0, "revenue"],
    ),
    "month not first of month": (_not_first, ["body", "repayments", 0, "month"]),
    "published before period end": (
        _published_early,
        ["body", "financial_statements", 0, "published_on"],
    ),
    "founded after onboarded": (_founded_late, ["body", "customer", "founded_on"]),
    "duplicate repayment months": (_duplicate_month, ["body", "repayments"]),
    "unknown extra field": (
        lambda b: _set(b, ["customer", "nickname"], "x"),
        ["body", "customer", "nickname"],
    ),
    "unknown segment": (
        lambda b: _set(b, ["customer", "segment"], "bank"),
        ["body", "customer", "segment"],
    ),
    "bad date text": (lambda b: _set(b, ["as_of"], "2024-02-30"), ["body", "as_of"]),
    "as_of before onboarding": (_before_onboarding, ["onboarded_on"]),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_422_naming_the_field(client, keys, body, case):
    make, loc = BAD[case]
    response = client.post("/v1/score", json=make(body), headers=scorer(keys))
    error = assert_error(response, 422)
    assert error["errors"], error
    assert loc in [e["loc"] for e in error["errors"]], error["errors"]
    assert all(e["reason"] for e in error["errors"])


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_422(client, keys, body, value):
    good = json.dumps(body)
    paid = body["repayments"][0]["amount_paid"]
    text = good.replace(f'"amount_paid": {json.dumps(paid)}', f'"amount_paid": {value}', 1)
    assert text != good
    response = client.post(
        "/v1/score",
        content=text.encode(),
        headers={**scorer(keys), "content-type": "application/json"},
    )
    error = assert_error(response, 422)
    assert ["body", "repayments", 0, "amount_paid"] in [e["loc"] for e in error["errors"]]


def test_not_json_is_422(client, keys):
    response = client.post(
        "/v1/score",
        content=b"{not json",
        headers={**scorer(keys), "content-type": "application/json"},
    )
    assert_error(response, 422)


@pytest.mark.parametrize("path", ["/v1/score", "/v1/score/features"])
@pytest.mark.parametrize(
    "content, content_type",
    [
        (b"", "application/json"),
        (b"{}", None),
        (b"{}", "text/plain"),
        (b"\xff\xfe", "application/json"),
    ],
    ids=["empty", "no content type", "text", "not UTF-8"],
)
def test_a_body_that_is_not_json_is_422_on_the_body(client, keys, path, content, content_type):
    """The single-customer routes read their bodies themselves (`serve.api.read_body`): what
    FastAPI refuses of a declared body they refuse too, located at the body."""
    headers = scorer(keys) | ({"content-type": content_type} if content_type else {})
    error = assert_error(client.post(path, content=content, headers=headers), 422)
    assert error["errors"] and error["errors"][0]["loc"] == ["body"], error


def test_a_json_media_type_with_parameters_or_a_suffix_is_json(client, keys, body):
    for media in ("application/json; charset=utf-8", "application/vnd.creditrisk+json"):
        headers = {**scorer(keys), "content-type": media}
        response = client.post("/v1/score", content=json.dumps(body).encode(), headers=headers)
        assert response.status_code == 200, (media, response.text)


def test_the_bodies_read_by_hand_are_documented_as_declared_bodies(app):
    """The schema documents the bodies `read_body` validates as FastAPI documents a body it
    validates itself (an app declaring them as the routes' parameters)."""
    from fastapi import FastAPI

    from serve.api import BODY_DEFINITIONS

    declared = FastAPI()

    @declared.post("/v1/score")
    def _score(body: ScoreRequest): ...

    @declared.post("/v1/score/features")
    def _features(body: FeatureRequest): ...

    expected = declared.openapi()
    schema = app.openapi()
    assert {"ScoreRequest", "FeatureRequest", "Customer", "Repayment"} <= set(BODY_DEFINITIONS)
    for name in BODY_DEFINITIONS:
        assert schema["components"]["schemas"][name] == expected["components"]["schemas"][name]
    for path in ("/v1/score", "/v1/score/features"):
        body = schema["paths"][path]["post"]["requestBody"]
        assert body == expected["paths"][path]["post"]["requestBody"], path


def test_batch_over_max_batch_is_422(client, keys, body, serve_config):
    customers = [
        {"customer": {**body["customer"], "customer_id": f"X{i:05d}"}}
        for i in range(serve_config.max_batch + 1)
    ]
    response = client.post(
        "/v1/score/batch",
        json={"as_of": body["as_of"], "customers": customers},
        headers=scorer(keys),
    )
    error = assert_error(response, 422)
    assert any("customers" in e["loc"] for e in error["errors"]), error


def test_batch_with_a_customer_twice_is_422(client, keys, body):
    entry = {k: v for k, v in body.items() if k != "as_of"}
    response = client.post(
        "/v1/score/batch",
        json={"as_of": body["as_of"], "customers": [entry, entry]},
        headers=scorer(keys),
    )
    error = assert_error(response, 422)
    assert ["body", "customers"] in [e["loc"] for e in error["errors"]]


def _big(body, limit):
    out = copy.deepcopy(body)
    row = out["repayments"][0]
    text = json.dumps(out)
    while len(text) <= limit:
        out["events"] = out["events"] + [{"occurred_on": row["month"], "type": "complaint",
                                          "severity": 1}] * 200  # fmt: skip
        text = json.dumps(out)
    return text.encode()


def test_body_over_the_limit_is_413(client, keys, body, serve_config):
    data = _big(body, serve_config.max_body_bytes)
    response = client.post(
        "/v1/score", content=data, headers={**scorer(keys), "content-type": "application/json"}
    )
    assert_error(response, 413)


def test_chunked_body_over_the_limit_is_413(client, keys, body, serve_config):
    data = _big(body, serve_config.max_body_bytes)

    def chunks():
        for i in range(0, len(data), 16_384):
            yield data[i : i + 16_384]

    response = client.post(
        "/v1/score", content=chunks(), headers={**scorer(keys), "content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413)


def test_unknown_customer_is_404(client, keys):
    response = client.get("/v1/customers/NOSUCH0000", headers={"X-API-Key": keys["viewer"]})
    assert_error(response, 404)


def test_unknown_warning_is_404(client, keys):
    response = client.post(
        "/v1/warnings/999999999/acknowledge",
        json={"note": "n"},
        headers={"X-API-Key": keys["officer"]},
    )
    assert_error(response, 404)


def test_unknown_route_is_404(client, keys):
    assert_error(client.get("/v1/nothing", headers={"X-API-Key": keys["admin"]}), 404)


def test_wrong_method_is_405(client, keys):
    assert_error(client.delete("/v1/score", headers={"X-API-Key": keys["admin"]}), 405)


def test_acting_on_a_resolved_warning_is_409(client, keys):
    officer = {"X-API-Key": keys["officer"]}
    found = client.get("/v1/warnings", params={"status": "open"}, headers=officer)
    assert found.status_code == 200, found.text
    warning = found.json()["warnings"][-1]
    done = client.post(
        f"/v1/warnings/{warning['id']}/resolve", json={"note": "paid"}, headers=officer
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "resolved"
    assert done.json()["resolution_note"] == "paid"
    for action in ("acknowledge", "resolve"):
        again = client.post(
            f"/v1/warnings/{warning['id']}/{action}", json={"note": "again"}, headers=officer
        )
        assert_error(again, 409)


def test_acknowledge_changes_the_state(client, keys):
    officer = {"X-API-Key": keys["officer"]}
    warning = client.get("/v1/warnings", params={"status": "open"}, headers=officer).json()
    warning = warning["warnings"][0]
    done = client.post(
        f"/v1/warnings/{warning['id']}/acknowledge", json={"note": "called"}, headers=officer
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "acknowledged"
    assert done.json()["acknowledged_by"] == "api:test-officer"


def test_customer_view(client, keys, latest):
    run, scores, runs = latest
    cid = scores.index[0]
    response = client.get(f"/v1/customers/{cid}", headers={"X-API-Key": keys["viewer"]})
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["customer_id"] == cid
    assert view["latest"]["run_id"] == int(run["id"])
    assert view["latest"]["as_of"] == f"{pd.Timestamp(run['as_of']).date()}"
    assert abs(view["latest"]["pd"] - float(scores.loc[cid, "pd"])) <= 1e-12
    assert view["latest"]["grade"] == scores.loc[cid, "grade"]
    assert view["latest"]["policy"] is not None
    history = [p["as_of"] for p in view["grade_history"]]
    assert history == sorted(history) and len(history) == len(runs)
    assert history[-1] == view["latest"]["as_of"]
    assert all(w["customer_id"] == cid for w in view["warnings"])


def test_warnings_filters(client, keys):
    viewer = {"X-API-Key": keys["viewer"]}
    every = client.get("/v1/warnings", params={"limit": 1000}, headers=viewer)
    assert every.status_code == 200, every.text
    listed = every.json()["warnings"]
    assert listed and {w["status"] for w in listed} <= {"open", "acknowledged"}
    for level in {w["level"] for w in listed}:
        found = client.get("/v1/warnings", params={"level": level}, headers=viewer).json()
        assert found["warnings"] and {w["level"] for w in found["warnings"]} == {level}
    two = client.get("/v1/warnings", params={"level": ["amber", "red"], "limit": 5}, headers=viewer)
    assert len(two.json()["warnings"]) <= 5
    assert {w["level"] for w in two.json()["warnings"]} <= {"amber", "red"}
    cid = listed[0]["customer_id"]
    mine = client.get("/v1/warnings", params={"customer_id": cid}, headers=viewer).json()
    assert mine["warnings"] and {w["customer_id"] for w in mine["warnings"]} == {cid}
    bad = client.get("/v1/warnings", params={"level": "purple"}, headers=viewer)
    assert ["query", "level", 0] in [e["loc"] for e in assert_error(bad, 422)["errors"]]


def test_model_card(client, keys, world):
    response = client.get("/v1/model", headers={"X-API-Key": keys["viewer"]})
    assert response.status_code == 200, response.text
    card = response.json()
    assert card["name"] == world.model_name
    assert card["version"] and card["loaded_from"] == "registry"
    assert card["trained_at"] and card["features"] and card["trees"] > 0
    assert {"auc", "gini"} <= set(card["metrics"])


def test_monitoring(client, keys):
    response = client.get("/v1/monitoring", headers={"X-API-Key": keys["viewer"]})
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["verdicts"] and found["model_version"]


def test_health_and_ready(client, world):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready", ready.json()
    assert ready.json()["model"]["name"] == world.model_name


def test_audit_rows_and_quiet_logs(client, keys, app, engine, body, caplog):
    from pipelines.usecases.access import read_api_audit

    data = json.dumps(body).encode()
    cid = body["customer"]["customer_id"]
    with caplog.at_level(logging.DEBUG, logger="creditrisk.serve"):
        scored = client.post(
            "/v1/score", content=data, headers={**scorer(keys), "content-type": "application/json"}
        )
        viewed = client.get(f"/v1/customers/{cid}", headers={"X-API-Key": keys["viewer"]})
        bad = client.post("/v1/score", json=_set(body, ["as_of"], 1), headers=scorer(keys))
        refused = client.get("/v1/admin/keys", headers={"X-API-Key": keys["viewer"]})
        anonymous = client.get("/v1/model")
    assert scored.status_code == 200, scored.text
    calls = {
        "score": (scored, "test-scorer", "/v1/score", 200),
        "view": (viewed, "test-viewer", "/v1/customers/{customer_id}", 200),
        "bad": (bad, "test-scorer", "/v1/score", 422),
        "refused": (refused, "test-viewer", "/v1/admin/keys", 403),
        "anonymous": (anonymous, None, "/v1/model", 401),
    }
    app.state.service.audit.flush()
    audit = read_api_audit(engine, limit=200).set_index("request_id")
    for name, (response, key_name, template, status) in calls.items():
        rid = response.headers["x-request-id"]
        rows = audit.loc[[rid]]
        assert len(rows) == 1, name
        row = rows.iloc[0]
        assert row["status"] == status == response.status_code, name
        assert row["path"] == template, name
        assert (row["key_name"] if isinstance(row["key_name"], str) else None) == key_name, name
    score_row = audit.loc[scored.headers["x-request-id"]]
    assert score_row["model_version"] == scored.json()["model"]["version"]
    assert score_row["input_sha256"] == hashlib.sha256(data).hexdigest()
    assert score_row["target"] == cid and score_row["outcome"] == "ok"
    assert pd.isna(audit.loc[viewed.headers["x-request-id"], "input_sha256"])
    records = [r for r in caplog.records if r.name.startswith("creditrisk.serve")]
    assert records
    raw = {cid, body["customer"]["industry"], body["customer"]["region"]}
    raw |= {
        repr(v)
        for s in body["financial_statements"]
        for v in s.values()
        if isinstance(v, float) and abs(v) >= 1000
    }
    for record in records:
        text = record.getMessage()
        assert not any(value in text for value in raw), text


def test_keys_reload_in_the_background_so_no_request_waits_for_the_store(client, app, world):
    """A key made or revoked in the store reaches the service's view with no request asking:
    the requests find the view fresh and check from memory."""
    from pipelines.store.db import open_store
    from pipelines.usecases.access import create_key, revoke_key

    ring = app.state.service.keyring
    engine = open_store(world.results_url, create=False)

    def seen(token: str, expected: bool) -> bool:
        deadline = time.monotonic() + 30  # a liveness bound, far above the 0.1 s period
        while (ring.check(token, reload=False) is not None) != expected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    try:
        token = create_key(engine, "test-background", "viewer", "tests").token
        assert seen(token, True)
        revoke_key(engine, "test-background", "tests")
        assert seen(token, False)
        assert ring.fresh
    finally:
        engine.dispose()
