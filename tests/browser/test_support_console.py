"""Support staff in a real browser: log in, find a delivery by order number, open its transaction, replay it
after the publisher fixed their endpoint, see the new attempt; the dashboard renders with that data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from flask import Flask

from dispatcher import accounts
from dispatcher.db import get_db
from dispatcher.models import Postback
from tests.browser.conftest import ARTIFACTS, LiveServer
from tests.browser.test_portal_flow import _network, _run_worker, _sale
from tests.portal.conftest import PASSWORD, Receiver


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"support-{name}.png"), full_page=True)


def test_staff_find_a_failed_delivery_replay_it_and_see_the_new_attempt(
    live_app: Flask,
    live_server: LiveServer,
    browser_page: Any,
    receiver: Receiver,
    redis_url: str,
    tmp_path: Path,
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    network = _network(live_app)
    with get_db(live_app).session() as session:
        session.add(
            Postback(
                publisher_id=network["publisher"],
                name="Voluum",
                url_template=receiver.url + "/pb?order=#on#&n=#attempt#",
            )
        )
        accounts.create_staff(session, "help@network.test", PASSWORD, "support")
    receiver.status, receiver.body = 404, b"<h1>unknown click</h1>"
    _sale(live_server, network)
    _run_worker(live_app, redis_url, tmp_path)
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())  # the Replay button asks for confirmation

    page.goto(f"{live_server.url}/support/deliveries")
    page.wait_for_url("**/support/login**")
    _shot(page, "1-login")
    page.get_by_label("Email").fill("help@network.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/support/deliveries")

    page.get_by_label("Order number").fill("ORD-777")
    page.get_by_role("button", name="Search").click()
    row = page.locator("#deliveries tbody tr").first
    assert "ORD-777" in (row.text_content() or "") and "failed" in (row.text_content() or "")
    _shot(page, "2-search")
    row.locator("a").first.click()
    page.wait_for_url("**/support/transactions/*")
    attempts = page.locator(".attempts")
    assert "404" in (attempts.text_content() or "") and "voluum-click-42" in page.content()
    page.get_by_text("Request and response").first.click()
    assert page.locator("pre.excerpt").first.text_content() == "<h1>unknown click</h1>"
    _shot(page, "3-transaction")
    transaction = page.url

    receiver.status, receiver.body = 200, b"ok"
    page.get_by_role("button", name="Replay").click()
    assert page.get_by_text("will be sent again in a moment").is_visible()
    _run_worker(live_app, redis_url, tmp_path)
    page.reload()
    new_attempt = page.locator("tr.attempt").nth(1)
    assert "succeeded" in (new_attempt.text_content() or "") and "200" in (new_attempt.text_content() or "")
    assert [hit.path.split("&n=")[1] for hit in receiver.received] == ["1", "2"]
    _shot(page, "4-replayed")

    page.get_by_role("link", name="Dashboard").click()
    assert page.locator("#stat-attempts").text_content() == "2"
    assert page.locator("#stat-success").text_content() == "50.0%"
    assert page.locator(".chart svg").count() == 4
    _shot(page, "5-dashboard")

    # The console on a phone: no page wider than the screen (tables scroll in their own box).
    page.set_viewport_size({"width": 390, "height": 844})
    widths = {}
    for path in ("/support/", "/support/deliveries", "/support/audit", "/support/account"):
        page.goto(live_server.url + path)
        widths[path] = page.evaluate("() => document.documentElement.scrollWidth")
        _shot(page, "390" + path.replace("/", "-").rstrip("-"))
    page.goto(transaction)
    widths["transaction"] = page.evaluate("() => document.documentElement.scrollWidth")
    _shot(page, "390-transaction")
    assert widths == dict.fromkeys(widths, 390)
