"""The credit staff page through the app (TestClient): sign-in, the session cookie, the CSRF and
same-host checks, roles, acting on warnings, scoring from the book, the watch list, error pages."""

from __future__ import annotations

import re

import pytest

ORIGIN = {"origin": "http://127.0.0.1"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def browser(app, client):
    """A fresh cookie jar on the started app (the session `client` started it)."""
    from fastapi.testclient import TestClient

    def make():
        return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)

    return make


@pytest.fixture
def signed_in(browser, keys):
    """sign_in(role) -> (client, csrf token) of a new session of that role's key."""

    def sign_in(role: str):
        c = browser()
        r = c.post("/login", data={"api_key": keys[role]}, headers=ORIGIN)
        assert r.status_code == 303, r.text
        page = c.get("/")
        assert page.status_code == 200
        return c, CSRF.search(page.text).group(1)

    return sign_in


@pytest.fixture
def service(app):
    return app.state.service


def _open_warnings(service, n_from_end: int):
    """An open warning for this test alone: counted from the oldest, so other tests differ."""
    from pipelines.usecases.lookup import warnings_view

    found = warnings_view(service.engine, ("open",), ("amber", "red"), None, 1000)
    return found[-n_from_end]


def _is_error(page, status: int) -> bool:
    return page.status_code == status and f'data-error="{status}"' in page.text


def test_sign_in_sets_a_strict_http_only_cookie_without_the_key(browser, keys):
    c = browser()
    r = c.post("/login", data={"api_key": keys["viewer"]}, headers=ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # the tests' config has cookie_secure=False
    assert keys["viewer"] not in cookie and keys["viewer"].split("_")[1] not in cookie
    home = c.get("/")
    assert home.status_code == 200 and "test-viewer" in home.text
    assert "Look up a customer" in home.text


def test_secure_cookie_by_default(app, browser, keys, monkeypatch):
    import dataclasses

    service = app.state.service
    monkeypatch.setattr(service, "config", dataclasses.replace(service.config, cookie_secure=True))
    r = browser().post("/login", data={"api_key": keys["viewer"]}, headers=ORIGIN)
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


@pytest.mark.parametrize("given", ["", "cr_00000000_" + "x" * 43, "revoked"])
def test_a_bad_key_is_refused(browser, keys, given):
    c = browser()
    r = c.post("/login", data={"api_key": keys.get(given, given)}, headers=ORIGIN)
    assert r.status_code == 401
    assert "set-cookie" not in r.headers
    assert 'class="form-error"' in r.text
    assert c.get("/").status_code == 303


def test_sign_in_from_another_site_is_refused(browser, keys):
    r = browser().post(
        "/login", data={"api_key": keys["admin"]}, headers={"origin": "https://evil.example"}
    )
    assert _is_error(r, 403) and "set-cookie" not in r.headers


def test_pages_need_a_session(browser):
    c = browser()
    for path in ("/", "/customers/C0000001", "/watchlist", "/model"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    assert c.get("/login").status_code == 200
    r = c.post("/warnings/1/acknowledge", data={"note": "x"}, headers=ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_sign_out_ends_the_session(signed_in):
    c, token = signed_in("viewer")
    old = dict(c.cookies)
    r = c.post("/logout", data={"csrf": token}, headers=ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    c.cookies.clear()
    c.cookies.update(old)
    assert c.get("/").status_code == 303


def test_sessions_expire_after_idle_time_and_lifetime():
    from serve.web import IDLE_SECONDS, SESSION_SECONDS, Sessions

    now = [0.0]
    sessions = Sessions(clock=lambda: now[0])
    idle = sessions.open("k", "viewer")
    now[0] = IDLE_SECONDS - 1
    assert sessions.get(idle.id) is idle
    now[0] += IDLE_SECONDS + 1
    assert sessions.get(idle.id) is None
    busy = sessions.open("k", "viewer")
    while now[0] + IDLE_SECONDS < busy.started + SESSION_SECONDS:
        now[0] += IDLE_SECONDS - 60
        assert sessions.get(busy.id) is busy
    now[0] = busy.started + SESSION_SECONDS + 1
    assert sessions.get(busy.id) is None
    assert sessions.get("not-a-session") is None


def test_forms_without_the_token_or_from_another_site_are_refused(signed_in, service):
    from pipelines.usecases.lookup import warning_view

    c, token = signed_in("officer")
    warning = _open_warnings(service, 1)
    url = f"/warnings/{warning['id']}/acknowledge"
    attempts = [
        ({"note": "n"}, ORIGIN),
        ({"note": "n", "csrf": "wrong"}, ORIGIN),
        ({"note": "n", "csrf": token}, {"origin": "https://evil.example"}),
        ({"note": "n", "csrf": token}, {"referer": "https://evil.example/page"}),
        ({"note": "n", "csrf": token}, {}),
    ]
    for data, headers in attempts:
        r = c.post(url, data=data, headers=headers)
        assert _is_error(r, 403), (data, headers, r.status_code)
    assert warning_view(service.engine, warning["id"])["status"] == "open"
    other, _ = signed_in("officer")  # another session's token is not this one's
    r = other.post(url, data={"note": "n", "csrf": token}, headers=ORIGIN)
    assert _is_error(r, 403)
    same_site_referer = {"referer": f"http://127.0.0.1/customers/{warning['customer_id']}"}
    r = c.post(url, data={"note": "n", "csrf": token}, headers=same_site_referer)
    assert r.status_code == 303  # Referer of this host stands in for a missing Origin
    assert warning_view(service.engine, warning["id"])["status"] == "acknowledged"


def test_roles_hide_buttons_and_refuse_the_post(signed_in, service):
    from pipelines.usecases.lookup import warning_view

    warning = _open_warnings(service, 2)
    cid = warning["customer_id"]
    for role, may_score, may_act in (
        ("viewer", False, False),
        ("scorer", True, False),
        ("officer", True, True),
    ):
        c, token = signed_in(role)
        page = c.get(f"/customers/{cid}")
        assert page.status_code == 200
        assert ('value="acknowledge"' in page.text) is may_act, role
        assert ("Score now" in page.text) is may_score, role
        if not may_act:
            r = c.post(
                f"/warnings/{warning['id']}/acknowledge",
                data={"note": "n", "csrf": token},
                headers=ORIGIN,
            )
            assert _is_error(r, 403) and f"role {role!r}" in r.text.replace("&#39;", "'")
        if not may_score:
            r = c.post(
                f"/customers/{cid}/score",
                data={"as_of": "2025-01-01", "csrf": token},
                headers=ORIGIN,
            )
            assert _is_error(r, 403)
    assert warning_view(service.engine, warning["id"])["status"] == "open"


def test_acknowledge_then_resolve_changes_the_state(signed_in, service):
    from pipelines.usecases.access import read_api_audit
    from pipelines.usecases.lookup import warning_view

    c, token = signed_in("officer")
    warning = _open_warnings(service, 3)
    wid, cid = warning["id"], warning["customer_id"]
    page = c.get(f"/customers/{cid}")
    assert f'id="warning-{wid}"' in page.text and 'data-status="open"' in page.text

    r = c.post(
        f"/warnings/{wid}/acknowledge",
        data={"note": "called the CFO", "csrf": token},
        headers=ORIGIN,
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"/customers/{cid}?done=acknowledged")
    page = c.get(r.headers["location"])
    assert page.status_code == 200 and f"Warning {wid} acknowledged." in page.text
    assert "called the CFO" in page.text and "web:test-officer" in page.text
    stored = warning_view(service.engine, wid)
    assert stored["status"] == "acknowledged" and stored["acknowledged_by"] == "web:test-officer"

    r = c.post(f"/warnings/{wid}/resolve", data={"note": "repaid", "csrf": token}, headers=ORIGIN)
    assert r.status_code == 303, r.text
    page = c.get(r.headers["location"])
    assert f"Warning {wid} resolved." in page.text and "repaid" in page.text
    assert warning_view(service.engine, wid)["status"] == "resolved"

    again = c.post(f"/warnings/{wid}/resolve", data={"note": "x", "csrf": token}, headers=ORIGIN)
    assert _is_error(again, 409)
    empty = c.post(
        f"/warnings/{wid}/acknowledge", data={"note": " ", "csrf": token}, headers=ORIGIN
    )
    assert _is_error(empty, 422) and "note" in empty.text
    missing = c.post(
        "/warnings/999999999/resolve", data={"note": "x", "csrf": token}, headers=ORIGIN
    )
    assert _is_error(missing, 404)

    service.audit.flush()
    calls = read_api_audit(service.engine, 200)
    mine = calls[
        (calls["path"] == "/warnings/{warning_id}/resolve") & (calls["target"] == str(wid))
    ]
    assert set(mine["key_name"]) == {"test-officer"}


def test_unknown_customer_and_bad_input_are_pages_not_json(signed_in):
    c, token = signed_in("scorer")
    missing = c.get("/customers/C9999999")
    assert _is_error(missing, 404) and "text/html" in missing.headers["content-type"]
    assert "C9999999" in missing.text and "Traceback" not in missing.text
    bad = c.get("/lookup", params={"customer_id": "not an id!"})
    assert _is_error(bad, 422) and "not a customer id" in bad.text
    found = c.get("/lookup", params={"customer_id": "C0000001"})
    assert found.status_code == 303 and found.headers["location"] == "/customers/C0000001"
    r = c.post("/customers/C0000001/score", data={"as_of": "soon", "csrf": token}, headers=ORIGIN)
    assert _is_error(r, 422) and "YYYY-MM-DD" in r.text
    assert "{" not in r.text.split("<main>")[1].split("</main>")[0]


def test_score_now_from_the_book_equals_the_stored_score(signed_in, service):
    from pipelines.usecases.lookup import customer_view
    from serve.web import fmt_pd

    c, token = signed_in("scorer")
    warning = _open_warnings(service, 4)
    cid = warning["customer_id"]
    stored = customer_view(service.engine, service.config.model_name, cid)["latest"]
    page = c.get(f"/customers/{cid}")
    as_of = re.search(r'name="as_of" type="date" value="([^"]+)"', page.text).group(1)
    assert as_of == str(stored["as_of"])[:10]
    r = c.post(f"/customers/{cid}/score", data={"as_of": as_of, "csrf": token}, headers=ORIGIN)
    assert r.status_code == 200, r.text
    live = r.text.split('id="live-result"')[1]
    assert re.search(r'id="live-pd">([^<]+)<', live).group(1) == fmt_pd(stored["pd"])
    assert f">{stored['grade']}</span>" in live
    assert live.count('class="bar up"') + live.count('class="bar down"') == len(stored["reasons"])
    assert stored["reasons"][0]["text"][:40] in live


def test_watch_list_filters_by_level_and_status(signed_in, service):
    from pipelines.usecases.lookup import warnings_view

    c, _ = signed_in("viewer")
    rows = re.compile(r'<tr data-level="([a-z]+)" data-status="([a-z]+)">')
    default = rows.findall(c.get("/watchlist").text)
    expected = warnings_view(service.engine, ("open", "acknowledged"), ("amber", "red"), None, 500)
    assert len(default) == len(expected) > 0
    assert {lv for lv, _ in default} <= {"amber", "red"}
    assert {st for _, st in default} <= {"open", "acknowledged"}
    red = rows.findall(c.get("/watchlist", params={"level": "red"}).text)
    assert red and {lv for lv, _ in red} == {"red"} and len(red) < len(default)
    resolved = rows.findall(c.get("/watchlist", params={"status": "resolved"}).text)
    assert resolved and {st for _, st in resolved} == {"resolved"}
    page = c.get("/watchlist", params={"level": "red"}).text
    dates = re.findall(
        r'<td class="num">\d{4}-\d{2}-\d{2}</td><td class="num">([0-9-]+)</td>', page
    )
    assert dates == sorted(dates, reverse=True)  # newest first
    assert _is_error(c.get("/watchlist", params={"level": "purple"}), 422)


def test_model_card_and_degraded_banner(signed_in, service, monkeypatch):
    c, _ = signed_in("viewer")
    card = service.holder.loaded.card
    page = c.get("/model")
    assert page.status_code == 200
    assert f"{card['name']} v{card['version']}" in page.text and 'id="degraded"' not in page.text
    assert "AUC" in page.text and "days past due current" in page.text
    ready = service.ready()
    degraded = ready | {"status": "degraded", "reasons": ["MLflow does not answer"]}
    monkeypatch.setattr(service, "ready", lambda: degraded)
    page = c.get("/model")
    assert 'id="degraded"' in page.text and "MLflow does not answer" in page.text


def test_pages_send_security_headers(signed_in):
    c, _ = signed_in("viewer")
    r = c.get("/watchlist")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert c.get("/static/creditrisk.css").status_code == 200
