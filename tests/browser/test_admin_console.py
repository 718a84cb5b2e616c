"""Network administration in a real browser: an admin logs in to the console, opens Administration, creates an
advertiser (its secrets shown once), a program for it and a publisher; the publisher then logs in to the
portal with the password the admin typed. Every administration page fits a 390 px phone (no page wider than
the screen), with screenshots at 390 and 1280 px under test-artifacts/."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from dispatcher import accounts
from dispatcher.db import get_db
from tests.browser.conftest import ARTIFACTS, LiveServer
from tests.portal.conftest import PASSWORD

PUBLISHER_PASSWORD = "a-password-the-admin-typed"


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)


def test_an_admin_creates_a_program_and_a_publisher_who_then_logs_in(
    live_app: Flask, live_server: LiveServer, browser_page: Any
) -> None:
    with get_db(live_app).session() as session:
        accounts.create_staff(session, "boss@network.test", PASSWORD, "admin")
        session.commit()
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{live_server.url}/support/login")
    page.get_by_label("Email").fill("boss@network.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/support/")
    page.get_by_role("link", name="Administration").click()
    page.wait_for_url("**/support/admin/publishers")

    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Advertisers").click()
    page.get_by_role("link", name="New advertiser").click()
    page.get_by_label("Name").fill("Shoe Shop <b>")
    page.get_by_role("button", name="Create advertiser").click()
    secrets = page.locator("#secrets").text_content() or ""
    assert re.search(r"adv_[0-9a-f]{12}_", secrets) and re.search(r"s2s_[0-9a-f]{12}_", secrets)
    _shot(page, "1-advertiser-created")

    page.get_by_role("link", name="New program").click()
    page.get_by_label("Advertiser", exact=True).select_option(label="Shoe Shop <b> (1)")
    page.get_by_label("Name", exact=True).fill("Shoes US")
    page.get_by_label("Landing URL", exact=True).fill("https://shop.example/?ref={clickid}")
    page.get_by_label("Commission", exact=True).fill("12%")
    page.get_by_label("Currency", exact=True).fill("usd")
    page.get_by_role("button", name="Create program").click()
    page.wait_for_url("**/support/admin/programs/*")
    assert "12% USD" in (page.locator(".facts").text_content() or "")
    _shot(page, "2-program-created")

    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Publishers").click()
    page.get_by_role("link", name="New publisher").click()
    page.get_by_label("Name").fill("Acme Media")
    page.get_by_label("Email (the portal login)").fill("ops@acme.test")
    page.get_by_label("Password (at least 8 characters)").fill(PUBLISHER_PASSWORD)
    page.get_by_role("button", name="Create publisher").click()
    assert re.search(r"pub_[0-9a-f]{12}_", page.locator("#secrets").text_content() or "")
    _shot(page, "3-publisher-created")
    page.get_by_label("Add a traffic source").fill("Coupon site")
    page.get_by_role("button", name="Add", exact=True).click()
    assert page.get_by_label("New name for Coupon site").is_visible()

    portal = page.context.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    portal.goto(f"{live_server.url}/portal/login")
    portal.get_by_label("Email").fill("ops@acme.test")
    portal.get_by_label("Password").fill(PUBLISHER_PASSWORD)
    portal.get_by_role("button", name="Log in").click()
    portal.wait_for_url("**/portal/postbacks")
    portal.goto(f"{live_server.url}/portal/links")
    assert "Shoes US" in portal.content()
    portal.context.close()

    page.goto(f"{live_server.url}/support/audit")
    log = page.locator("#audit").text_content() or ""
    assert log.count("boss@network.test") >= 4 and "create" in log

    admin_pages = {
        "publishers": "/support/admin/publishers",
        "publisher-new": "/support/admin/publishers/new",
        "publisher": "/support/admin/publishers/1",  # a new database: each is the first of its kind
        "advertisers": "/support/admin/advertisers",
        "advertiser-new": "/support/admin/advertisers/new",
        "advertiser": "/support/admin/advertisers/1",
        "programs": "/support/admin/programs",
        "program-new": "/support/admin/programs/new",
        "program": "/support/admin/programs/1",
        "staff": "/support/admin/staff",
        "staff-new": "/support/admin/staff/new",
        "staff-member": "/support/admin/staff/1",
    }
    widths = {}
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 844})
        for name, path in admin_pages.items():
            page.goto(live_server.url + path)
            assert page.locator("h1").count() == 1, path
            if width == 390:
                widths[name] = page.evaluate("() => document.documentElement.scrollWidth")
            _shot(page, f"{name}-{width}")
    assert widths == dict.fromkeys(widths, 390), widths
