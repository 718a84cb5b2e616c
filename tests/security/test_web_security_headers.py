"""Security headers: every GET route of the app (from url_map), fetched as anonymous, publisher, support
staff and admin, plus error pages, answers with a CSP that allows no inline script and no framing, nosniff and
a Referrer-Policy; no rendered page holds an inline <script>, an on*= handler or a javascript: URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from dispatcher.db import get_db
from dispatcher.models import Attempt, Base
from tests.conftest import app_settings
from tests.security.test_web_security_csrf import World, sign_in
from tests.workers.conftest import Receiver

ROLES = ["anonymous", "publisher", "staff", "admin", "advertiser"]
# Pages that are not routes of their own: error pages of each kind.
EXTRA_PATHS = [
    "/no/such/page",
    "/portal/no-such-page",
    "/c/999999",
    "/c/1?pub=abc",
    "/support/deliveries/999999",
    "/advertiser/transactions/no-such-sale",
]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)
HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE)  # style-src 'self' would drop it


@pytest.fixture
def app(tmp_path: Path, sqlite_url: str, redis_url: str) -> Iterator[Flask]:
    """With the demo routes, so their pages are walked too. SQLite: headers do not depend on the database."""
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url, DEMO_MODE=True))
    Base.metadata.create_all(get_db(app).engine)
    yield app
    get_db(app).dispose()


@pytest.fixture
def world(app: Flask, redis_url: str) -> Iterator[World]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # the suite's own embedded Redis: login counters start at zero
    receiver = Receiver()
    yield World(app, receiver)
    receiver.close()
    client.close()


def get_paths(app: Flask, world: World) -> list[str]:
    """Every GET route, with this world's ids (the publisher's own objects) in the path."""
    values = {
        "postback_id": world.ids["postback"],
        "delivery_id": world.ids["delivery"],
        "transaction_id": world.ids["transaction"],
        "sales_id": world.sales_id,
        "program_id": 1,
        "entry_id": 1,
        "publisher_id": world.publisher.id,
        "source_id": world.ids["source"],
        "advertiser_id": world.ids["advertiser"],
        "member_id": world.ids["staff"],
        "upload_id": "no-such-upload",
        "filename": "portal.js",
    }
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" in (rule.methods or set()):
            paths.append(re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: str(values[m.group(1)]), rule.rule))
    return (
        sorted(set(paths)) + EXTRA_PATHS + ["/static/support.js", "/static/advertiser.js", "/static/app.css"]
    )


def walk(app: Flask, world: World) -> dict[tuple[str, str], TestResponse]:
    answers = {}
    for role in ROLES:
        client: FlaskClient = app.test_client()
        sign_in(client, world, role)
        for path in get_paths(app, world):
            answers[role, path] = client.get(path)
    return answers


def csp_directives(response: TestResponse) -> dict[str, str]:
    policy = response.headers.get("Content-Security-Policy", "")
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


def header_problems(response: TestResponse) -> list[str]:
    problems = []
    csp = csp_directives(response)
    script = csp.get("script-src") or csp.get("default-src", "")
    if not script or "'unsafe-inline'" in script or "'unsafe-eval'" in script or "*" in script.split():
        problems.append(f"script-src: {script!r}")
    if (
        csp.get("frame-ancestors") != "frame-ancestors 'none'"
        and response.headers.get("X-Frame-Options") != "DENY"
    ):
        problems.append("framing allowed")
    if response.headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no nosniff")
    if not response.headers.get("Referrer-Policy"):
        problems.append("no Referrer-Policy")
    return problems


def markup_problems(html: str) -> list[str]:
    found = INLINE_SCRIPT.findall(html) + HANDLER.findall(html) + STYLE_ATTRIBUTE.findall(html)
    if "javascript:" in html.lower():
        found.append("javascript: URL")
    return found


def test_every_answer_sends_the_security_headers_and_no_page_has_inline_script(
    app: Flask, world: World
) -> None:
    answers = walk(app, world)

    html = {key: r for key, r in answers.items() if r.mimetype == "text/html"}
    pages = {key for key, r in html.items() if r.status_code == 200}
    json = {key: r for key, r in answers.items() if r.mimetype == "application/json"}
    print(
        f"\nheaders: {len(answers)} GET answers ({len(html)} HTML, {len(pages)} of them 200 pages, "
        f"{len(json)} JSON) over {len(get_paths(app, world))} paths as {', '.join(ROLES)}"
    )
    assert {key: header_problems(r) for key, r in answers.items() if header_problems(r)} == {}
    # The walk reached the consoles' pages, signed in, not only their login redirects.
    for role, path in [
        ("publisher", "/portal/postbacks"),
        ("staff", "/support/"),
        ("admin", "/support/replays/new"),
        ("advertiser", "/advertiser/integration"),
        ("advertiser", f"/advertiser/transactions/{world.sales_id}"),
    ]:
        assert (role, path) in pages
    assert len(pages) >= 25 and len(json) >= 10
    # No page holds script the CSP would block (or, without the CSP, run): scripts come from files.
    texts = {key: r.get_data(as_text=True) for key, r in html.items()}
    assert {key: markup_problems(page) for key, page in texts.items() if markup_problems(page)} == {}
    assert sum("<script" in page for page in texts.values()) >= 10


def test_a_page_showing_hostile_text_still_has_no_inline_script(app: Flask, world: World) -> None:
    """A receiver's answer shown in the delivery log is text: autoescape keeps it from becoming markup."""
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    with get_db(app).session() as session:
        session.add(
            Attempt(
                delivery_id=world.ids["delivery"],
                number=1,
                outcome="failed",
                method="GET",
                url="http://127.0.0.1/pb",
                status_code=500,
                response_excerpt=hostile,
                response_headers={"X-Evil": hostile},
            )
        )
    client = app.test_client()
    sign_in(client, world, "publisher")
    staff = app.test_client()
    sign_in(staff, world, "staff")

    pages = [
        client.get(f"/portal/deliveries/{world.ids['delivery']}").get_data(as_text=True),
        staff.get(f"/support/transactions/{world.ids['transaction']}").get_data(as_text=True),
    ]

    for page in pages:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert markup_problems(page) == []
