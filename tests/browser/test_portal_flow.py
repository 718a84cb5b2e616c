"""A publisher's first minute, in a real browser: log in, paste the FlexOffers example, insert a macro from
the palette, watch the preview and a lint warning, save, send a test to a local receiver and read its answer,
then find the delivery of a real sale in My deliveries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
import requests
from flask import Flask

from dispatcher import accounts, config
from dispatcher.db import get_db
from dispatcher.ledger import handoff
from tests.browser.conftest import LiveServer
from tests.portal.conftest import PASSWORD, Receiver

ROOT = Path(__file__).resolve().parents[2]
FLEXOFFERS_QUERY = "/pixel.track?sid=#fobs#&orderid=#on#&amount=#sa#&commission=#ca#&date=#et#"


def _network(app: Flask) -> dict[str, Any]:
    with get_db(app).session() as session:
        publisher = accounts.create_publisher(session, "Acme Media", "ops@acme.test", PASSWORD)
        source = accounts.create_traffic_source(session, publisher.publisher.id, "Coupon site")
        advertiser = accounts.create_advertiser(session, "Shoe Shop")
        program = accounts.create_program(
            session,
            advertiser.advertiser.id,
            "Shoes US",
            landing_url="https://shop.example/",
            commission="10%",
        )
        return {
            "publisher": publisher.publisher.id,
            "source": source.id,
            "program": program.id,
            "api_key": advertiser.api_key,
        }


def _sale(server: LiveServer, network: dict[str, Any]) -> dict[str, Any]:
    """A click on the publisher's tracking link, then the advertiser reporting the sale; its answer."""
    click = requests.get(
        f"{server.url}/c/{network['program']}",
        params={"pub": network["publisher"], "ts": network["source"], "fobs": "voluum-click-42"},
        allow_redirects=False,
        timeout=10,
    )
    click_id = click.headers["Location"].split("clickid=")[1].split("&")[0]
    sale = requests.post(
        f"{server.url}/api/v1/transactions",
        json={"click_id": click_id, "order_number": "ORD-777", "sale_amount": "80.00"},
        headers={"Authorization": f"Bearer {network['api_key']}"},
        timeout=10,
    )
    assert sale.status_code == 201, sale.text
    answer: dict[str, Any] = sale.json()
    return answer
    assert sale.json()["deliveries"] == 1


def _run_worker(app: Flask, redis_url: str, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in config.KNOWN_KEYS}
    env.update(
        DATABASE_URL=get_db(app).url,
        REDIS_URL=redis_url,
        SECRET_KEY="test-secret-key-that-is-long-enough",
        INSTANCE_PATH=str(tmp_path / "worker-instance"),
        POSTBACK_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    command = [sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"]
    assert handoff.drain(app), "the hand-over to RQ did not finish"  # the live server's sales, this process
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_publisher_registers_tests_and_watches_a_postback(
    live_app: Flask,
    live_server: LiveServer,
    browser_page: Any,
    screenshots: Any,
    receiver: Receiver,
    redis_url: str,
    tmp_path: Path,
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    network = _network(live_app)
    page = browser_page
    receiver.body = b"conversion recorded <ok>"

    # Log in.
    page.goto(f"{live_server.url}/portal/postbacks")
    screenshots(page, "1-login")
    page.get_by_label("Email").fill("ops@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/portal/postbacks")
    assert page.get_by_text("No postbacks yet.").is_visible()
    screenshots(page, "2-postbacks-empty")

    # Paste the FlexOffers example (aimed at the local receiver), then add #status# from the palette.
    page.get_by_role("link", name="Create your first postback").click()
    url_field = page.get_by_label("Postback URL")
    url_field.fill(receiver.url + FLEXOFFERS_QUERY + "&st=")
    url_field.press("End")
    page.get_by_role("button", name="Insert #status#").click()
    assert url_field.input_value().endswith("&date=#et#&st=#status#")

    # The preview expands the sample sale; the linter warns about plain http.
    preview = page.locator("#preview-url")
    expected = receiver.url + "/pixel.track?sid=cl1ck-4f2a&orderid=ORD-10045&amount=125.00&commission=12.50"
    # Wait for the preview of the last edit: an earlier answer (the URL before #status#) also starts so.
    page.wait_for_function(
        "expected => { const text = document.querySelector('#preview-url').textContent;"
        " return text.startsWith(expected) && text.endsWith('&st=approved'); }",
        arg=expected,
    )
    assert preview.text_content().endswith("&st=approved")  # type: ignore[union-attr]
    warning = page.locator(".finding-warning").first
    assert "http:// sends the postback unencrypted" in (warning.text_content() or "")

    # A pasted tracker placeholder is flagged live, and fixing it clears the error.
    url_field.press("End")
    url_field.type("&cid=REPLACE")
    page.wait_for_selector(".finding-error")
    assert "REPLACE is your tracker's placeholder" in (
        page.locator(".finding-error").first.text_content() or ""
    )
    # The preview still shows what would be sent, the placeholder marked where it stands.
    bad = page.locator("#preview-url mark.bad")
    assert bad.text_content() == "REPLACE"
    assert "REPLACE is your tracker's placeholder" in (bad.get_attribute("title") or "")
    assert (preview.text_content() or "").startswith(expected)
    url_field.fill(url_field.input_value().replace("&cid=REPLACE", ""))
    page.wait_for_function("() => !document.querySelector('.finding-error')")
    page.get_by_label("approved →").fill("sale")
    screenshots(page, "3-postback-form-preview")

    page.get_by_role("button", name="Save postback").click()
    page.wait_for_url("**/portal/postbacks/*")
    assert page.get_by_text("Postback saved.").is_visible()

    # Send test: the receiver gets the sample values and its answer is shown (escaped).
    page.get_by_role("button", name="Send test").click()
    result = page.locator("#test-result")
    result.wait_for()
    assert "Success" in (result.text_content() or "") and "HTTP 200" in (result.text_content() or "")
    assert "conversion recorded <ok>" in (page.locator("#test-result pre").text_content() or "")
    assert receiver.received[-1].path.startswith("/pixel.track?sid=cl1ck-4f2a&orderid=ORD-10045")
    # The answer is on screen, not at the foot of a long page that reloaded at its top.
    assert page.url.endswith("#test")
    top = page.evaluate("document.getElementById('test').getBoundingClientRect().top")
    assert -2 < top < 900, top  # scrolled to it (sub-pixel rounding)
    screenshots(page, "4-send-test")

    # A real sale: the outbox makes a delivery, a worker sends it, My deliveries shows it.
    _sale(live_server, network)
    _run_worker(live_app, redis_url, tmp_path)
    page.get_by_role("link", name="My deliveries").click()
    row = page.locator("#deliveries tbody tr").first
    assert "ORD-777" in (row.text_content() or "") and "voluum-click-42" in (row.text_content() or "")
    assert "succeeded" in (row.text_content() or "")
    screenshots(page, "5-deliveries")
    page.get_by_label("Order number").fill("ORD-777")
    page.get_by_role("button", name="Filter").click()
    page.locator("#deliveries tbody tr a").first.click()
    assert "HTTP 200" in (page.locator("#attempts").text_content() or "")
    screenshots(page, "6-delivery-detail")
    assert receiver.received[-1].path.startswith(
        "/pixel.track?sid=voluum-click-42&orderid=ORD-777&amount=80.00"
    )

    page.get_by_role("link", name="Postbacks").click()
    assert "100%" in (page.locator("table").text_content() or "")
    screenshots(page, "7-postbacks-list")

    page.get_by_role("link", name="Traffic sources").click()
    page.get_by_label("Name", exact=True).fill("Newsletter")
    page.get_by_role("button", name="Add", exact=True).click()
    assert page.get_by_text("Traffic source “Newsletter” added").is_visible()
    screenshots(page, "8-traffic-sources")
    page.get_by_role("link", name="Account", exact=True).click()
    page.get_by_role("button", name="Replace with a new token").click()
    assert page.get_by_label("API token").input_value().startswith("pub_")
    screenshots(page, "9-api-token")
