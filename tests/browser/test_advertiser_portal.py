"""An advertiser in a real browser: log in, find a sale by its order number, approve it, and the publisher's
receiver gets the approval postback; every advertiser page fits a 390 px phone (screenshots at 390 and
1280)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from flask import Flask

from dispatcher import accounts
from dispatcher.db import get_db
from dispatcher.models import Postback, Program
from tests.browser.conftest import ARTIFACTS, LiveServer
from tests.browser.test_portal_flow import _network, _run_worker, _sale
from tests.portal.conftest import PASSWORD, Receiver

EMAIL = "orders@shoeshop.test"


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"advertiser-{name}.png"), full_page=True)


def _width(page: Any) -> int:
    width: int = page.evaluate("() => document.documentElement.scrollWidth")
    return width


def test_an_advertiser_approves_a_sale_and_the_publisher_gets_the_postback(
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
                url_template=receiver.url + "/pb?order=#on#&status=#status#",
                events=["sale", "approved"],
                statuses=["pending", "approved"],
            )
        )
        advertiser_id = session.get_one(Program, network["program"]).advertiser_id
        accounts.create_advertiser_user(session, advertiser_id, EMAIL, PASSWORD)
    _sale(live_server, network)
    _run_worker(live_app, redis_url, tmp_path)
    page = browser_page

    page.goto(f"{live_server.url}/advertiser/transactions")
    page.wait_for_url("**/advertiser/login**")
    _shot(page, "1280-login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/advertiser/transactions")

    page.get_by_label("Order number").fill("ORD-777")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#transactions tbody tr")
    assert rows.count() == 1 and "ORD-777" in (rows.first.text_content() or "")
    _shot(page, "1280-transactions")
    rows.first.locator("a").first.click()
    page.wait_for_url("**/advertiser/transactions/*")
    transaction = page.url
    # Declining is final: it asks first, and dismissing the question changes nothing.
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Decline").click()
    assert asked and asked[0].startswith("Decline order ORD-777?")
    assert page.locator("#sale-status").text_content() == "pending"
    page.get_by_role("button", name="Approve").click()  # not asked
    assert page.get_by_text("approved; 1 postback to send").is_visible()
    assert page.locator("#sale-status").text_content() == "approved"
    _shot(page, "1280-transaction")
    _run_worker(live_app, redis_url, tmp_path)

    assert [hit.path for hit in receiver.received] == [
        "/pb?order=ORD-777&status=pending",
        "/pb?order=ORD-777&status=approved",
    ]

    # The other pages, with something on each: a bulk confirmation, a CSV upload's results, the integration.
    page.goto(f"{live_server.url}/advertiser/bulk?action=reversed&order_number=ORD-777")
    assert page.locator("#bulk-count").text_content() == "1"
    _shot(page, "1280-bulk")
    page.get_by_role("button", name="Reverse 1 transaction").click()
    page.wait_for_url("**/advertiser/bulk/*")
    bulk_status = page.url
    page.goto(f"{live_server.url}/advertiser/upload")
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text("order_number,status\nORD-777,approved\nORD-NONE,approved\n")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("#upload-summary")
    assert page.locator("#count-duplicate").text_content() == "1"
    assert page.locator("#count-rejected").text_content() == "1"
    _shot(page, "1280-upload-results")
    page.goto(f"{live_server.url}/advertiser/integration")
    assert "token=s2s_…" in (page.locator(".program code.url").first.text_content() or "")
    _shot(page, "1280-integration")

    page.set_viewport_size({"width": 390, "height": 844})
    widths = {}
    for name, url in (
        ("transactions", f"{live_server.url}/advertiser/transactions"),
        ("transaction", transaction),
        ("bulk", f"{live_server.url}/advertiser/bulk?action=reversed&order_number=ORD-777"),
        ("bulk-status", bulk_status),
        ("upload", f"{live_server.url}/advertiser/upload"),
        ("integration", f"{live_server.url}/advertiser/integration"),
    ):
        page.goto(url)
        widths[name] = _width(page)
        _shot(page, f"390-{name}")
    page.goto(f"{live_server.url}/advertiser/upload")  # the results page is the upload's answer
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("#upload-summary")
    widths["upload-results"] = _width(page)
    _shot(page, "390-upload-results")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/advertiser/login")
    widths["login"] = _width(page)
    _shot(page, "390-login")
    assert widths == dict.fromkeys(widths, 390)
