"""CSRF: every state-changing route of the session-authenticated consoles (portal, support, advertiser), read
from the app's url_map, refuses a request without the CSRF token, with a wrong one and with another
session's, and changes nothing in the database; the right token works. Token APIs are exempt, so a session
cookie alone must not authenticate them.

A new POST/PUT/DELETE route in a console blueprint fails `test_every_state_changing_route_has_a_case` until it
gets a row in CASES; a new blueprint with such routes fails `test_every_state_changing_route_is_classified`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from dispatcher.db import get_db
from dispatcher.models import Base, Publisher
from dispatcher.web.pages import session_blueprints
from tests.advertiser.conftest import AdvertiserLogin, advertiser_log_in, make_advertiser_user
from tests.conftest import app_settings
from tests.dispatcher import factories
from tests.portal.conftest import PASSWORD, Account, csrf_token, log_in, make_publisher
from tests.support.conftest import Staff, csrf_of, make_staff, staff_log_in
from tests.workers.conftest import Receiver

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Blueprints whose state-changing routes authenticate by a token in the request (or need none), never by the
# session cookie: CSRF does not apply to them (see test_a_session_cookie_alone_does_not_open_the_json_api).
TOKEN_BLUEPRINTS = {"publisher_api", "advertiser_api", "s2s", "demo"}
REFUSED = re.compile(r"The CSRF token (is missing|is invalid|has expired)|The CSRF tokens do not match")


@pytest.fixture
def app(tmp_path: Path, sqlite_url: str, redis_url: str) -> Iterator[Flask]:
    """SQLite only: CSRF is checked before any query, the same on every database."""
    app = create_app(app_settings(tmp_path, sqlite_url, redis_url))
    Base.metadata.create_all(get_db(app).engine)
    yield app
    get_db(app).dispose()


class World:
    """One publisher's objects, and accounts of each kind made on first use (a password hash costs time)."""

    def __init__(self, app: Flask, receiver: Receiver) -> None:
        self.app = app
        self.accounts: dict[tuple[str, bool], Account | Staff | AdvertiserLogin] = {}
        self.publisher = make_publisher(app)
        with get_db(app).session() as session:
            owner = session.get(Publisher, self.publisher.id)
            assert owner is not None
            source = factories.traffic_source(session, owner)
            hook = factories.postback(session, owner)
            hook.url_template = receiver.url("/pb?cid=#fobs#")
            paused = factories.postback(session, owner, active=False, paused_reason="by the publisher")
            program = factories.program(session)
            sale = factories.transaction(session, owner, program)
            self.advertiser_id = program.advertiser_id
            failed = factories.delivery(
                session,
                hook,
                factories.event(session, sale),
                state="failed",
                attempt_count=1,
                destination_host="127.0.0.1",
                completed_at=datetime.now(UTC),
            )
            self.ids = {"source": source.id, "postback": hook.id, "paused": paused.id, "delivery": failed.id}
            self.ids["transaction"], self.sales_id = sale.id, sale.sales_id
            self.ids["sales_id"], self.order_number = sale.sales_id, sale.order_number
            self.ids["program"], self.ids["advertiser"] = program.id, program.advertiser_id
        self.ids["publisher"] = self.publisher.id
        self.ids["staff"] = make_staff(app, "support").id  # a staff user the administration forms change

    def account(self, who: str, second: bool = False) -> Account | Staff | AdvertiserLogin:
        """`second`: another account of the same kind (an attacker with a session of their own)."""
        if who == "publisher" and not second:
            return self.publisher
        if (who, second) not in self.accounts:
            made: Account | Staff | AdvertiserLogin
            if who == "publisher":
                made = make_publisher(self.app)
            elif who == "advertiser":
                made = make_advertiser_user(self.app, self.advertiser_id)
            else:
                made = make_staff(self.app, who)
            self.accounts[who, second] = made
        return self.accounts[who, second]


@pytest.fixture
def world(app: Flask, clean_redis: redis.Redis, receiver: Receiver) -> World:
    return World(app, receiver)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


Form = Callable[[FlaskClient, World], dict[str, Any]]


def fields(**values: Any) -> Form:
    return lambda _client, _world: dict(values)


def postback_form(_client: FlaskClient, world: World) -> dict[str, Any]:
    return {
        "url": "http://127.0.0.1:9/pb?cid=#fobs#&amount=#sa#",
        "method": "GET",
        "scope": "all",
        "events": ["sale"],
        "statuses": ["pending", "approved"],
    }


def bulk_replay_form(client: FlaskClient, _world: World) -> dict[str, Any]:
    """The confirmation page says how many will be sent; the form repeats that count."""
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page = client.get(f"/support/replays/new?since={since}").get_data(as_text=True)
    count = re.search(r'id="replay-count">(\d+)<', page)
    assert count, page
    return {"since": since, "confirmed_count": count.group(1)}


def program_form(_client: FlaskClient, world: World) -> dict[str, Any]:
    return {
        "advertiser_id": str(world.ids["advertiser"]),
        "name": "Shoes",
        "landing_url": "https://shop.example/",
        "commission": "5%",
        "currency": "USD",
    }


def advertiser_bulk_form(client: FlaskClient, _world: World) -> dict[str, Any]:
    """As bulk replay: the confirmation page's count, repeated by the form."""
    page = client.get("/advertiser/bulk?action=approved").get_data(as_text=True)
    count = re.search(r'id="bulk-count">(\d+)<', page)
    assert count, page
    return {"action": "approved", "confirmed_count": count.group(1)}


def approvals_file(_client: FlaskClient, world: World) -> dict[str, Any]:
    text = f"order_number,status\n{world.order_number},approved\n"
    return {"file": (io.BytesIO(text.encode()), "approvals.csv")}


@dataclass(frozen=True)
class Case:
    """Who posts (anonymous, publisher, staff, admin), to which path (ids from the world), with what form,
    what the right token gets (status), and whether that request writes to the database."""

    who: str
    path: str
    form: Form = fields()
    status: int = 302
    writes: bool | None = True  # None: may or may not (a job queued in Redis, a test send)


# Network administration (admin role), by endpoint name after `support.admin_`.
ADMIN_CASES = {
    "publisher_create": Case(
        "admin",
        "/support/admin/publishers",
        fields(name="Acme", email="new@acme.test", password=PASSWORD),
        200,
    ),
    "publisher_edit": Case(
        "admin",
        "/support/admin/publishers/{publisher}",
        lambda _client, world: {"name": "Renamed", "email": world.publisher.email},
    ),
    "publisher_active": Case("admin", "/support/admin/publishers/{publisher}/active", fields(active="0")),
    "publisher_password": Case(
        "admin", "/support/admin/publishers/{publisher}/password", fields(password="another-password")
    ),
    "publisher_token": Case("admin", "/support/admin/publishers/{publisher}/token", status=200),
    "source_add": Case("admin", "/support/admin/publishers/{publisher}/sources", fields(name="Newsletter")),
    "source_rename": Case(
        "admin", "/support/admin/publishers/{publisher}/sources/{source}", fields(name="Renamed site")
    ),
    "source_active": Case(
        "admin", "/support/admin/publishers/{publisher}/sources/{source}/active", fields(active="0")
    ),
    "advertiser_create": Case("admin", "/support/admin/advertisers", fields(name="Shop"), 200),
    "advertiser_edit": Case("admin", "/support/admin/advertisers/{advertiser}", fields(name="Renamed shop")),
    "advertiser_active": Case("admin", "/support/admin/advertisers/{advertiser}/active", fields(active="0")),
    "advertiser_rotate": Case(
        "admin", "/support/admin/advertisers/{advertiser}/rotate", fields(secret="api_key", grace="1h"), 200
    ),
    "program_create": Case("admin", "/support/admin/programs", program_form),
    "program_edit": Case("admin", "/support/admin/programs/{program}", program_form),
    "program_active": Case("admin", "/support/admin/programs/{program}/active", fields(active="0")),
    "staff_create": Case(
        "admin", "/support/admin/staff", fields(email="new@staff.test", role="support", password=PASSWORD)
    ),
    "staff_active": Case("admin", "/support/admin/staff/{staff}/active", fields(active="0")),
    "staff_password": Case(
        "admin", "/support/admin/staff/{staff}/password", fields(password="another-password")
    ),
}

CASES: dict[str, Case] = {
    "portal.login_submit": Case("anonymous", "/portal/login", fields(), writes=False),
    "portal.logout": Case("publisher", "/portal/logout"),  # raises the session epoch
    "portal.new_token": Case("publisher", "/portal/account/token", status=200),
    "portal.revoke_token": Case("publisher", "/portal/account/token/revoke"),
    "portal.set_time_zone": Case("publisher", "/portal/account/time-zone", fields(time_zone="Europe/Berlin")),
    "portal.create_postback": Case("publisher", "/portal/postbacks", postback_form),
    "portal.update_postback": Case("publisher", "/portal/postbacks/{postback}", postback_form),
    "portal.pause_postback": Case("publisher", "/portal/postbacks/{postback}/pause"),
    "portal.resume_postback": Case("publisher", "/portal/postbacks/{paused}/resume"),
    "portal.delete_postback": Case("publisher", "/portal/postbacks/{postback}/delete"),
    "portal.signing_secret": Case("publisher", "/portal/postbacks/{postback}/secret", fields(action="new")),
    "portal.test_postback": Case("publisher", "/portal/postbacks/{postback}/test", status=200, writes=None),
    "portal.preview_postback": Case("publisher", "/portal/postbacks/preview", postback_form, 200, False),
    "portal.backfill_postback": Case(
        "publisher",
        "/portal/postbacks/{postback}/backfill",
        fields(since=(datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%d")),
        writes=None,
    ),
    "portal.replay_delivery": Case("publisher", "/portal/deliveries/{delivery}/replay"),
    "portal.add_source": Case("publisher", "/portal/sources", fields(name="Coupon site")),
    "portal.rename_source": Case("publisher", "/portal/sources/{source}", fields(name="Renamed")),
    "support.login_submit": Case("anonymous", "/support/login", fields(), writes=False),
    "support.logout": Case("staff", "/support/logout"),
    "support.new_token": Case("staff", "/support/account/token", status=200),
    "support.revoke": Case("staff", "/support/account/token/revoke"),
    "support.set_time_zone": Case("staff", "/support/account/time-zone", fields(time_zone="Europe/Berlin")),
    "support.replay_delivery": Case("staff", "/support/deliveries/{delivery}/replay"),
    "support.pause_postback": Case("staff", "/support/postbacks/{postback}/pause", fields(reason="abuse")),
    "support.resume_postback": Case("staff", "/support/postbacks/{paused}/resume", fields(reason="fixed")),
    "support.bulk_replay_start": Case("admin", "/support/replays", bulk_replay_form),
    **{f"support.admin_{name}": case for name, case in ADMIN_CASES.items()},
    "advertiser.login_submit": Case("anonymous", "/advertiser/login", fields(), writes=False),
    "advertiser.logout": Case("advertiser", "/advertiser/logout"),
    "advertiser.set_time_zone": Case(
        "advertiser", "/advertiser/account/time-zone", fields(time_zone="Europe/Berlin")
    ),
    "advertiser.change_transaction": Case(
        "advertiser", "/advertiser/transactions/{sales_id}/status", fields(status="approved")
    ),
    "advertiser.bulk_start": Case("advertiser", "/advertiser/bulk", advertiser_bulk_form),
    "advertiser.upload": Case("advertiser", "/advertiser/upload", approvals_file, status=200),
    "advertiser.rotate_secret": Case(
        "advertiser", "/advertiser/integration/rotate", fields(secret="s2s_token", grace="1h"), status=200
    ),
}


def state_changing_endpoints(app: Flask, blueprints: frozenset[str] | set[str]) -> set[str]:
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.methods & STATE_CHANGING and rule.endpoint.partition(".")[0] in blueprints
    }


def test_every_state_changing_route_is_classified(app: Flask) -> None:
    every = {
        rule.endpoint.partition(".")[0] for rule in app.url_map.iter_rules() if rule.methods & STATE_CHANGING
    }

    assert session_blueprints(app) >= {"portal", "support", "advertiser"}
    assert every - session_blueprints(app) - TOKEN_BLUEPRINTS == set(), "session or token blueprint?"


def test_every_state_changing_route_has_a_case(app: Flask) -> None:
    routes = state_changing_endpoints(app, session_blueprints(app))

    print(f"\nCSRF: {len(routes)} state-changing session routes, {len(CASES)} cases")
    assert routes == set(CASES)


def database_rows(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    with get_db(app).session() as session:
        return {
            table.name: [tuple(row) for row in session.execute(select(table).order_by(*table.primary_key))]
            for table in Base.metadata.sorted_tables
        }


def sign_in(client: FlaskClient, world: World, who: str, second: bool = False) -> None:
    if who == "anonymous":
        return
    account = world.account("support" if who == "staff" else who, second)
    if isinstance(account, Staff):
        staff_log_in(client, account)
    elif isinstance(account, AdvertiserLogin):
        advertiser_log_in(client, account.email)
    else:
        log_in(client, account)


def session_token(client: FlaskClient, endpoint: str) -> str:
    """The CSRF token of the client's session, from a form the console shows it."""
    page = {
        "portal.login_submit": "/portal/login",
        "support.login_submit": "/support/login",
        "advertiser.login_submit": "/advertiser/login",
    }.get(endpoint, _ACCOUNT_PAGES[endpoint.partition(".")[0]])
    return csrf_token(client, page) if page.startswith("/portal") else csrf_of(client, page)


_ACCOUNT_PAGES = {
    "portal": "/portal/account",
    "support": "/support/account",
    "advertiser": "/advertiser/upload",
}


def form_for(endpoint: str, case: Case, client: FlaskClient, world: World) -> dict[str, Any]:
    form = case.form(client, world)
    if endpoint == "portal.login_submit":
        form.update(email=world.publisher.email, password=PASSWORD)
    elif endpoint == "support.login_submit":
        form.update(email=world.account("support").email, password=PASSWORD)
    elif endpoint == "advertiser.login_submit":
        form.update(email=world.account("advertiser").email, password=PASSWORD)
    return form


def signed_in(client: FlaskClient, endpoint: str) -> bool:
    home = {"support": "/support/", "advertiser": "/advertiser/transactions"}.get(
        endpoint.partition(".")[0], "/portal/postbacks"
    )
    return client.get(home).status_code == 200


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_a_form_needs_its_own_sessions_csrf_token(app: Flask, world: World, endpoint: str) -> None:
    case = CASES[endpoint]
    path = case.path.format(**world.ids)
    attacker = app.test_client()
    sign_in(attacker, world, case.who, second=True)
    foreign = session_token(attacker, endpoint)
    client = app.test_client()
    sign_in(client, world, case.who)
    right = session_token(client, endpoint)
    form_for(endpoint, case, client, world)  # any account the form names exists before the snapshot
    before = database_rows(app)

    for token in (None, "ImIwYmFkIg.aGVsbG8.d3Jvbmc", foreign):
        form = form_for(endpoint, case, client, world)
        if token is not None:
            form["csrf_token"] = token
        refused = client.post(path, data=form)

        assert refused.status_code == 400, (endpoint, token, refused.status_code)
        assert REFUSED.search(refused.get_data(as_text=True)), refused.get_data(as_text=True)
        assert database_rows(app) == before, f"{endpoint} wrote with token {token!r}"
        assert signed_in(client, endpoint) == (case.who != "anonymous")

    accepted = client.post(path, data={**form_for(endpoint, case, client, world), "csrf_token": right})
    accepted.get_data()  # a streamed answer (the CSV upload's) does its work as it is read

    assert accepted.status_code == case.status, accepted.get_data(as_text=True)[:2000]
    if case.writes is not None:
        assert (database_rows(app) != before) == case.writes, endpoint


def api_requests(app: Flask, world: World) -> list[tuple[str, str]]:
    """Every method of every /api/ route, with this world's ids in the path."""
    values = {"postback_id": world.ids["postback"], "delivery_id": world.ids["delivery"], "sales_id": "s1"}
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: str(values[m.group(1)]), rule.rule)
            found += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


@pytest.mark.parametrize("who", ["publisher", "staff", "advertiser"])
def test_a_session_cookie_alone_does_not_open_the_json_api(app: Flask, world: World, who: str) -> None:
    """The token APIs skip CSRF; that is only safe because a signed-in browser's cookie is not a credential
    there (a cross-site form can send the cookie, never an Authorization header)."""
    client = app.test_client()
    sign_in(client, world, who)
    before = database_rows(app)
    requests = api_requests(app, world)
    public = {("GET", "/api/openapi.json"), ("GET", "/api/docs")}  # the API description, for anyone

    answers = {
        (method, path): client.open(path, method=method, json={"url": "http://127.0.0.1:9/pb?x=#fobs#"})
        for method, path in requests
        if (method, path) not in public
    }

    print(f"\nsession cookie without bearer token: {len(answers)} API requests as {who}")
    assert len(answers) >= 13
    assert {key: response.status_code for key, response in answers.items()} == dict.fromkeys(answers, 401)
    assert all(response.get_json()["error"] for response in answers.values())
    assert database_rows(app) == before
