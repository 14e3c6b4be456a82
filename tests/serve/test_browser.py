"""The credit staff page in a real headless Chromium (Debian's, driven by Playwright): sign in,
open a customer with an open warning, score it now, see the reasons chart, acknowledge the
warning, open the watch list and the model card; a screenshot of each page is saved."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(app, client):
    """The app (started by the session `client`) on uvicorn at 127.0.0.1 and a free port."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-web-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def screenshots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {folder}")
    return folder


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"
)
def test_credit_staff_flow_in_chromium(served, screenshots, keys, app):
    from playwright.sync_api import expect, sync_playwright

    from pipelines.usecases.lookup import warning_view, warnings_view

    engine = app.state.service.engine
    warning = warnings_view(engine, ("open",), ("red",), None, 1)[0]
    wid, cid = warning["id"], warning["customer_id"]
    failures: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on(
                "response",
                lambda r: (
                    failures.append(f"{r.status} {r.url}")
                    if r.request.is_navigation_request() and r.status >= 400
                    else None
                ),
            )
            page.on("pageerror", lambda e: failures.append(f"script error: {e}"))

            def shot(name: str) -> None:
                assert page.locator("[data-error]").count() == 0, page.inner_text("main")
                assert failures == [], failures
                page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)

            page.goto(f"{served}/")
            expect(page).to_have_url(f"{served}/login")
            shot("01-sign-in")
            page.fill("#api_key", keys["officer"])
            page.click("button:has-text('Sign in')")
            expect(page.locator("h1")).to_have_text("Look up a customer")
            shot("02-home")

            page.fill("#customer_id", cid)
            page.click("main button:has-text('Open')")
            expect(page).to_have_url(f"{served}/customers/{cid}")
            expect(page.locator(f"#warning-{wid} [data-status]")).to_have_text("open")
            bars = page.locator("svg.reasons-chart rect.bar")
            assert bars.count() > 0
            shot("03-customer")

            page.click("button:has-text('Score now')")
            live = page.locator("#live-result")
            expect(live).to_be_visible()
            chart = live.locator("svg.reasons-chart")
            expect(chart).to_be_visible()
            live_bars = chart.locator("rect.bar")
            assert live_bars.count() > 0
            assert all(
                float(live_bars.nth(i).get_attribute("width")) > 0 for i in range(live_bars.count())
            )
            expect(chart.locator("text.bar-label").first).to_be_visible()
            expect(live.locator("#live-pd")).to_contain_text("%")
            shot("04-scored")

            page.fill(f"#ack-note-{wid}", "called the customer; payment plan agreed")
            page.click(f"#warning-{wid} button:has-text('Acknowledge')")
            expect(page.locator("#done")).to_have_text(f"Warning {wid} acknowledged.")
            expect(page.locator(f"#warning-{wid} [data-status]")).to_have_text("acknowledged")
            expect(page.locator(f"#warning-{wid}")).to_contain_text("payment plan agreed")
            shot("05-acknowledged")
            assert warning_view(engine, wid)["status"] == "acknowledged"

            page.click("nav a:has-text('Watch list')")
            expect(page.locator("h1")).to_contain_text("Watch list")
            assert page.locator("#watchlist tbody tr").count() > 0
            page.uncheck("input[name=level][value=amber]")
            page.click("button:has-text('Filter')")
            levels = page.locator("#watchlist tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.level)"
            )
            assert levels and set(levels) == {"red"}
            shot("06-watchlist")

            page.click("nav a:has-text('Model')")
            expect(page.locator("h1")).to_contain_text("Model card")
            shot("07-model")

            page.goto(f"{served}/customers/C9999999")
            assert page.locator("[data-error='404']").count() == 1  # the error marker works

            page.click("button:has-text('Sign out')")
            expect(page).to_have_url(f"{served}/login")
        finally:
            browser.close()
    assert sorted(q.name for q in screenshots.glob("*.png"))[:7] == [
        "01-sign-in.png",
        "02-home.png",
        "03-customer.png",
        "04-scored.png",
        "05-acknowledged.png",
        "06-watchlist.png",
        "07-model.png",
    ]
