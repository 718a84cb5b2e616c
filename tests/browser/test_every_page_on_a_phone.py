"""Every page on a phone: each GET route of `app.url_map` that answers with an HTML page is loaded in Chromium
at 390x844 and at 1280x900, logged in as whoever the page is for, with ids from one seeded network (a
publisher with postbacks, a failed delivery with its attempt, a transaction, an advertiser, staff, bulk jobs,
a demo receipt). At 390 px no page may be wider than the screen and every link of the top bar (the account
page and Log out among them) must be on screen. Screenshots: test-artifacts/screen-<page>-390.png and
-1280.png.

A route added later is checked without anyone listing it: a route without URL parameters is loaded as it is,
one with parameters needs its ids in `URLS` (the test fails naming it until it has them), and a route that is
not an HTML page goes in `NOT_PAGES` with the reason (the test fails on a checked route that is not HTML).

One browser, one server and one database for the module: the pages only read, so nothing needs to be fresh."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import select

from app import create_app
from dispatcher import accounts
from dispatcher.advertiser import bulk as advertiser_bulk
from dispatcher.db import get_db
from dispatcher.demo import DEMO_POSTBACK_PATH
from dispatcher.models import Base, Delivery, Postback, Program, Transaction
from dispatcher.support import bulk as support_bulk
from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LiveServer, _browser_or_skip
from tests.browser.test_portal_flow import _network, _run_worker, _sale
from tests.conftest import app_settings
from tests.portal.conftest import PASSWORD, Receiver

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# A Redis database of this module's own (the suite's server): the autouse `_redis_emptied` empties database 0
# before each test, which would drop the bulk jobs seeded for the whole module; 8-15 are the API worlds'.
REDIS_DB = 7
SHOT_HEIGHT = 6000  # px: see _screenshot

PUBLISHER_EMAIL = "ops@acme.test"  # made by `_network`
SUPPORT_EMAIL = "help@network.test"
ADMIN_EMAIL = "boss@network.test"
ADVERTISER_EMAIL = "orders@shoeshop.test"

# GET routes that are not pages a person reads (POST-only routes are never visited: only GET is enumerated).
NOT_PAGES: dict[str, str] = {
    "/static/<path:filename>": "the stylesheet, scripts and icons",
    "/favicon.ico": "the icon",
    "/healthz": "JSON health check",
    "/readyz": "JSON readiness check",
    "/livez": "plain-text liveness check",
    "/metrics": "Prometheus text",
    "/c/<int:program_id>": "the tracking link: a redirect to the advertiser's landing page",
    "/s2s/transaction": "the advertisers' server-to-server pixel (plain text)",
    "/demo/receiver": "the demo postback receiver (JSON)",
    "/api/openapi.json": "the OpenAPI document (JSON); /api/docs is its page",
    "/api/v1/conversions": "publisher API (JSON)",
    "/api/v1/deliveries": "publisher API (JSON)",
    "/api/v1/deliveries/<int:delivery_id>": "publisher API (JSON)",
    "/api/v1/postbacks": "publisher API (JSON)",
    "/api/v1/postbacks/<int:postback_id>": "publisher API (JSON)",
    "/api/v1/programs": "publisher API (JSON)",
    "/api/v1/transactions": "advertiser API (JSON)",
    "/api/v1/transactions/<sales_id>": "advertiser API (JSON)",
    "/portal/conversions/export": "CSV download",
    "/portal/postbacks/<int:postback_id>/backfill": "the backfill's progress (JSON), polled by the edit page",
    "/advertiser/uploads/<upload_id>.csv": "CSV download of an upload's results",
}

# The URL to load for a route with parameters ({names} are the seeded ids of `World`), or for one whose page
# shows more with a query (a bulk confirmation, a built link, a search with results).
URLS: dict[str, str] = {
    "/portal/postbacks/<int:postback_id>": "/portal/postbacks/{long_postback}",
    "/portal/deliveries/<int:delivery_id>": "/portal/deliveries/{failed_delivery}",
    "/portal/links": "/portal/links?program_id={program}&traffic_source_id={source}&fobs=%7Bcf_click_id%7D",
    "/support/deliveries": "/support/deliveries?order_number=ORD-777",
    "/support/deliveries/<int:delivery_id>": "/support/deliveries/{failed_delivery}",
    "/support/transactions/<int:transaction_id>": "/support/transactions/{transaction}",
    "/support/sales/<sales_id>": "/support/sales/{sales_id}",
    "/support/postbacks/<int:postback_id>": "/support/postbacks/{long_postback}",
    "/support/replays/new": "/support/replays/new?since=2020-01-01",
    "/support/replays/<int:entry_id>": "/support/replays/{replay}",
    "/support/admin/publishers/<int:publisher_id>": "/support/admin/publishers/{publisher}",
    "/support/admin/advertisers/<int:advertiser_id>": "/support/admin/advertisers/{advertiser}",
    "/support/admin/programs/<int:program_id>": "/support/admin/programs/{program}",
    "/support/admin/staff/<int:member_id>": "/support/admin/staff/{support_user}",
    "/advertiser/transactions/<sales_id>": "/advertiser/transactions/{sales_id}",
    "/advertiser/bulk": "/advertiser/bulk?action=reversed&order_number=ORD-777",
    "/advertiser/bulk/<int:entry_id>": "/advertiser/bulk/{advertiser_bulk}",
}

# Who looks at a page, by where it is; the sign-in pages and everything else are seen logged out.
ROLES = {"/portal/": "publisher", "/support/": "admin", "/advertiser/": "advertiser"}
LOGINS = {
    "publisher": ("/portal/login", PUBLISHER_EMAIL),
    "admin": ("/support/login", ADMIN_EMAIL),
    "advertiser": ("/advertiser/login", ADVERTISER_EMAIL),
}
# The page's width; the top bar's links that leave the screen, and those shown (text, path); and, to say
# what to fix, the last three elements in the page that stick out (an edge beyond the screen, or content
# wider than themselves) outside any box that scrolls or clips them.
MEASURE = """() => {
  const contained = el => {
    for (let up = el.parentElement; up; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== 'visible') return true;
    }
    return false;
  };
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + [...el.classList].map(c => '.' + c).join('');
  const sticking = [...document.querySelectorAll('body *')]
    .filter(el => (el.getBoundingClientRect().right > window.innerWidth
                   || (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === 'visible'))
                  && !contained(el))
    .reverse().slice(0, 3).map(el => `${name(el)} (${el.scrollWidth} px)`);
  const offscreen = [...document.querySelectorAll('header.topbar a, header.topbar button')]
    .filter(el => { const box = el.getBoundingClientRect();
                    return box.width > 0 && (box.left < 0 || box.right > window.innerWidth); })
    .map(el => el.textContent.trim());
  const visible = [...document.querySelectorAll('header.topbar a, header.topbar button')]
    .filter(el => el.getBoundingClientRect().width > 0)
    .map(el => [el.textContent.trim(), new URL(el.href || location.href).pathname]);
  return {width: document.documentElement.scrollWidth, offscreen, visible, sticking};
}"""


@dataclass(frozen=True)
class Page:
    rule: str
    path: str
    role: str | None

    @property
    def name(self) -> str:
        """The screenshot's name, from the route (the same every run, whatever the ids): slashes as dashes, a
        parameter by its name ("portal-postbacks-postback_id"), "home" for /."""
        rule = re.sub(r"<(?:\w+:)?(\w+)>", r"\1", self.rule)
        return re.sub(r"[^A-Za-z0-9_.]+", "-", rule).strip("-") or "home"


def role_of(rule: str) -> str | None:
    if rule.endswith("/login"):
        return None
    return next((role for prefix, role in ROLES.items() if rule.startswith(prefix)), None)


def get_rules(app: Flask) -> list[str]:
    """Every route answering GET, once each (a route may have two endpoints)."""
    return sorted({rule.rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())})


def pages_of(app: Flask, ids: dict[str, Any]) -> tuple[list[Page], list[str]]:
    """The pages to load, and the routes that are neither a page with its URL nor excluded (with why)."""
    pages: list[Page] = []
    unchecked: list[str] = []
    for rule in get_rules(app):
        if rule in NOT_PAGES:
            continue
        if rule in URLS:
            pages.append(Page(rule, URLS[rule].format(**ids), role_of(rule)))
        elif "<" in rule:
            unchecked.append(f"{rule}: give it URLS (seeded ids) or, if it is no HTML page, NOT_PAGES")
        else:
            pages.append(Page(rule, rule, role_of(rule)))
    stale = sorted((NOT_PAGES.keys() | URLS.keys()) - set(get_rules(app)))
    unchecked += [f"{rule}: listed here but no longer a GET route" for rule in stale]
    return pages, unchecked


def test_every_get_route_is_a_checked_page_or_excluded(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    """Without a browser: a new route with parameters nobody gave ids to fails here, named."""
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url, DEMO_MODE=True))
    ids = dict.fromkeys(re.findall(r"{(\w+)}", " ".join(URLS.values())), 1)
    pages, unchecked = pages_of(app, ids)
    assert unchecked == []
    assert len(pages) > 40  # the portal, the console with its administration, the advertiser portal, public
    get_db(app).dispose()


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[Flask, LiveServer, dict[str, Any]]]:
    """The app on a SQLite file, its live server, and the ids of a network with something on every page."""
    tmp_path = tmp_path_factory.mktemp("every-page")
    own_redis = f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}"
    client = redis.Redis.from_url(own_redis)
    client.flushdb()
    app = create_app(app_settings(tmp_path, f"sqlite:///{tmp_path / 'pages.db'}", own_redis, DEMO_MODE=True))
    Base.metadata.create_all(get_db(app).engine)
    server = LiveServer(app)
    ok, refusing = Receiver(), Receiver()
    refusing.status, refusing.body = 404, b"<h1>unknown click</h1>" + b" no such click id" * 20
    try:
        yield app, server, _seed(app, server, ok, refusing, own_redis, client, tmp_path)
    finally:
        server.stop()
        ok.close()
        refusing.close()
        client.flushdb()
        client.close()
        get_db(app).dispose()


def _seed(
    app: Flask,
    server: LiveServer,
    ok: Receiver,
    refusing: Receiver,
    redis_url: str,
    client: redis.Redis,
    tmp_path: Path,
) -> dict[str, Any]:
    network = _network(app)
    # A long URL template without a space to break at: what made forms and tables wider than a phone.
    long_template = (
        ok.url + "/postback/conversion/track?sid=#fobs#&order=#on#&amount=#sa#&commission=#ca#&date=#et#"
        "&status=#status#&utm_campaign=summer-sale-2026-shoes-boots-and-sandals-for-everyone&utm_source=network"
    )
    with get_db(app).session() as session:
        long_postback = Postback(
            publisher_id=network["publisher"], name="Voluum, every field", url_template=long_template
        )
        failing = Postback(
            publisher_id=network["publisher"], name="Old tracker", url_template=refusing.url + "/pb?o=#on#"
        )
        demo = Postback(
            publisher_id=network["publisher"], name="Demo", url_template=server.url + DEMO_POSTBACK_PATH
        )
        session.add_all([long_postback, failing, demo])
        support = accounts.create_staff(session, SUPPORT_EMAIL, PASSWORD, "support")
        admin = accounts.create_staff(session, ADMIN_EMAIL, PASSWORD, "admin")
        program = session.get_one(Program, network["program"])
        shop_user = accounts.create_advertiser_user(
            session, program.advertiser_id, ADVERTISER_EMAIL, PASSWORD
        )
        session.flush()
        ids = {
            "publisher": network["publisher"],
            "source": network["source"],
            "program": network["program"],
            "advertiser": program.advertiser_id,
            "long_postback": long_postback.id,
            "failing_postback": failing.id,
            "support_user": support.id,
            "admin": admin.id,
            "advertiser_user": shop_user.id,
        }
    assert _sale(server, network)["deliveries"] == 3  # one to each of the publisher's three postbacks
    _run_worker(app, redis_url, tmp_path)
    with get_db(app).session() as session:
        sale = session.scalars(select(Transaction)).one()
        failed = session.scalars(
            select(Delivery).where(Delivery.postback_id == ids["failing_postback"])
        ).one()
        assert failed.state == "failed" and failed.attempt_count == 1, failed.state
        ids.update(transaction=sale.id, sales_id=sale.sales_id, failed_delivery=failed.id)
    # The bulk jobs' status pages: queued and never run (no worker after this), which the pages show too. Each
    # start commits, so a plain session (not the one of `session()`, which commits on leaving).
    with get_db(app).session_factory() as session:
        replay = support_bulk.parse_filter({"since": "2020-01-01"})
        ids["replay"] = support_bulk.start(session, client, ids["admin"], replay, 1).id
        change = advertiser_bulk.parse({"action": "reversed", "order_number": "ORD-777"})
        entry = advertiser_bulk.start(session, client, ids["advertiser"], ids["advertiser_user"], change, 1)
        ids["advertiser_bulk"] = entry.id
    receipt = requests.get(f"{server.url}/demo/receiver", params={"sid": "a" * 120}, timeout=10)
    assert receipt.ok  # a receipt with a long value, besides the demo postback's
    return ids


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _signed_in(browser: Any, base: str, role: str | None) -> Any:
    """A page of a browser context of its own (its own cookies), logged in as `role`."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    if role is not None:
        path, email = LOGINS[role]
        page.goto(base + path)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login" not in url)
    return page


def _screenshot(tab: Any, name: str) -> None:
    """The whole page, or its top SHOT_HEIGHT px through a viewport that tall: /api/docs is about 185,000 px
    tall at 390 px, and a full-page screenshot of it timed out (a clip of a full page too)."""
    if tab.evaluate("() => document.documentElement.scrollHeight") <= SHOT_HEIGHT:
        tab.screenshot(path=str(ARTIFACTS / name), full_page=True)
        return
    viewport = tab.viewport_size
    tab.set_viewport_size({"width": viewport["width"], "height": SHOT_HEIGHT})
    tab.screenshot(path=str(ARTIFACTS / name))
    tab.set_viewport_size(viewport)


@pytest.mark.browser
def test_every_page_fits_a_phone(world: tuple[Flask, LiveServer, dict[str, Any]], browser: Any) -> None:
    app, server, ids = world
    pages, unchecked = pages_of(app, ids)
    assert unchecked == []
    ARTIFACTS.mkdir(exist_ok=True)
    tabs: dict[str | None, Any] = {}
    problems: list[str] = []
    widths: dict[str, int] = {}
    for page in pages:
        if page.role not in tabs:
            tabs[page.role] = _signed_in(browser, server.url, page.role)
        tab = tabs[page.role]
        tab.set_viewport_size(PHONE)
        response = tab.goto(server.url + page.path)
        kind = response.headers.get("content-type", "") if response else ""
        if response is None or response.status != 200 or not kind.startswith("text/html"):
            status = response.status if response else None
            problems.append(f"{page.path}: {status} {kind} (not an HTML page? then NOT_PAGES)")
            continue
        if page.role is not None and "/login" in tab.url:
            problems.append(f"{page.path}: sent to the login page as {page.role}")
        phone = tab.evaluate(MEASURE)
        widths[page.path] = phone["width"]
        if phone["width"] > PHONE["width"]:
            problems.append(f"{page.path}: {phone['width']} px wide at 390, in {phone['sticking']}")
        if phone["offscreen"]:
            problems.append(f"{page.path}: top bar off screen at 390: {phone['offscreen']}")
        if page.role is not None:
            texts = {text for text, _ in phone["visible"]}
            paths = {path for _, path in phone["visible"]}
            account = page.rule.split("/")[1]
            if "Log out" not in texts or f"/{account}/account" not in paths:
                problems.append(f"{page.path}: no account link or Log out in the top bar: {phone['visible']}")
        _screenshot(tab, f"screen-{page.name}-390.png")
        tab.set_viewport_size(DESKTOP)
        desktop = tab.evaluate(MEASURE)
        if desktop["width"] > DESKTOP["width"]:
            problems.append(f"{page.path}: {desktop['width']} px wide at 1280, in {desktop['sticking']}")
        _screenshot(tab, f"screen-{page.name}-1280.png")
    for tab in tabs.values():
        tab.context.close()
    assert problems == [], "\n".join(problems)
    assert len(widths) == len(pages)
