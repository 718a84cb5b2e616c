"""A publisher's money and links, in a real browser: find yesterday's conversion, download it for ClickFlare,
build a tracking link and follow it; the pages fit a 390 px phone screen."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import update

from dispatcher.db import get_db
from dispatcher.models import Click
from tests.browser.conftest import LiveServer
from tests.browser.test_portal_flow import _network
from tests.portal.conftest import PASSWORD

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _yesterdays_sale(app: Flask, server: LiveServer, network: dict[str, Any], tracker_click: str) -> str:
    click = requests.get(
        f"{server.url}/c/{network['program']}",
        params={"pub": network["publisher"], "ts": network["source"], "fobs": tracker_click},
        allow_redirects=False,
        timeout=10,
    )
    click_id = click.headers["Location"].split("clickid=")[1].split("&")[0]
    when = datetime.now(UTC) - timedelta(days=1)
    with get_db(app).session() as session:  # the visitor clicked yesterday, before buying
        session.execute(
            update(Click).where(Click.click_id == click_id).values(created_at=when - timedelta(minutes=5))
        )
    sale = requests.post(
        f"{server.url}/api/v1/transactions",
        json={
            "click_id": click_id,
            "order_number": "ORD-YESTERDAY",
            "sale_amount": "80.00",
            "event_time": when.isoformat(),
        },
        headers={"Authorization": f"Bearer {network['api_key']}"},
        timeout=10,
    )
    assert sale.status_code == 201, sale.text
    return when.date().isoformat()


def _fits_a_phone(page: Any) -> int:
    width: int = page.evaluate("() => document.documentElement.scrollWidth")
    return width


def test_a_publisher_recovers_yesterdays_conversion_and_builds_a_link(
    live_app: Flask, live_server: LiveServer, browser_page: Any, screenshots: Any, tmp_path: Path
) -> None:
    network = _network(live_app)
    day = _yesterdays_sale(live_app, live_server, network, "cf-777")
    page = browser_page

    page.goto(f"{live_server.url}/portal/login")
    page.get_by_label("Email").fill("ops@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/portal/postbacks")

    # Yesterday's conversion, with what it earned.
    page.get_by_role("link", name="Conversions").click()
    page.get_by_label("From").fill(day)
    page.get_by_label("To").fill(day)
    page.get_by_role("button", name="Filter").click()
    row = page.locator("#conversions tbody tr").first
    assert "ORD-YESTERDAY" in (row.text_content() or "") and "8.00" in (row.text_content() or "")
    assert day in (page.locator("#by-day").text_content() or "")
    screenshots(page, "conversions-1280")

    # Download it for ClickFlare: one line, the tracker's click id first, payout = commission.
    page.get_by_label("Format").select_option("clickflare")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    saved = tmp_path / "clickflare.csv"
    download.value.save_as(saved)
    [line] = list(csv.reader(io.StringIO(saved.read_text())))
    assert (line[0], line[1], line[3]) == ("cf-777", "8.00", "sale")
    assert datetime.fromisoformat(line[4]).date().isoformat() == day

    # Build a tracking link with a sub id for the tracker's click id, and follow it.
    page.get_by_role("link", name="Links").click()
    page.get_by_label("Program").select_option(label="Shoes US")
    page.get_by_label("Traffic source").select_option(label="Coupon site")
    page.get_by_label("fobs", exact=True).fill("{cf_click_id}")
    page.get_by_role("button", name="Build link").click()
    link = (page.locator("#tracking-link").text_content() or "").strip()
    assert f"pub={network['publisher']}" in link and "fobs=%7Bcf_click_id%7D" in link
    screenshots(page, "links-1280")
    followed = requests.get(link, allow_redirects=False, timeout=10)
    assert followed.status_code == 302 and followed.headers["Location"].startswith("https://shop.example/")

    # The same pages on a phone: nothing wider than the screen.
    page.set_viewport_size(PHONE)
    widths = {}
    for path in (
        "/portal/conversions",
        "/portal/links?program_id=" + str(network["program"]),
        "/portal/postbacks",
        "/portal/postbacks/new",
        "/portal/deliveries",
        "/portal/sources",
        "/portal/account",
    ):
        page.goto(live_server.url + path)
        widths[path] = _fits_a_phone(page)
        screenshots(page, path.split("/")[2].split("?")[0] + "-390")
    assert widths == dict.fromkeys(widths, 390)
    page.set_viewport_size(DESKTOP)
