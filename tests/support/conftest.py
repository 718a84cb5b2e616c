"""Support fixtures: staff users of each role, logged-in clients, and a small network of deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dispatcher import accounts
from dispatcher.db import get_db
from dispatcher.models import Attempt, Click
from tests.dispatcher import factories
from tests.portal.conftest import CSRF_FIELD, PASSWORD
from tests.workers.conftest import Receiver


@dataclass(frozen=True)
class Staff:
    id: int
    email: str
    role: str


def make_staff(app: Flask, role: str = "support") -> Staff:
    # One counter for the run: this conftest is also imported by name, as a second module.
    email = f"staff{factories.next_number()}@network.test"
    with get_db(app).session() as session:
        staff = accounts.create_staff(session, email, PASSWORD, role)
        return Staff(staff.id, email, role)


def csrf_of(client: FlaskClient, path: str) -> str:
    found = CSRF_FIELD.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def staff_log_in(client: FlaskClient, staff: Staff, password: str = PASSWORD) -> None:
    response = client.post(
        "/support/login",
        data={"email": staff.email, "password": password, "csrf_token": csrf_of(client, "/support/login")},
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def support_staff(app: Flask, clean_redis: redis.Redis) -> Staff:
    return make_staff(app, "support")


@pytest.fixture
def admin(app: Flask, clean_redis: redis.Redis) -> Staff:
    return make_staff(app, "admin")


@pytest.fixture
def console(client: FlaskClient, support_staff: Staff) -> FlaskClient:
    """A client logged in as support staff."""
    staff_log_in(client, support_staff)
    return client


@pytest.fixture
def admin_console(client: FlaskClient, admin: Staff) -> FlaskClient:
    staff_log_in(client, admin)
    return client


@pytest.fixture
def csrf(console: FlaskClient) -> str:
    return csrf_of(console, "/support/account")


HOSTILE = "<script>alert('owned')</script>"
T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Network:
    """Two publishers, two advertisers; one delivery per row of `SPEC`, named by its key."""

    ids: dict[str, int]
    publishers: dict[str, int]
    postbacks: dict[str, int]
    programs: dict[str, int]
    advertisers: dict[str, int]
    transactions: dict[str, int]


# name: (publisher, postback, program, order, sales id, click id, fobs, host, state, error, status,
#        minutes after T0)
SPEC = {
    "a": (
        "p1",
        "hook1",
        "shoes",
        "ORD-A",
        "SALE-A",
        "CLICK-A",
        "sub-a",
        "a.example",
        "failed",
        "http_status",
        404,
        0,
    ),
    "b": (
        "p1",
        "hook1",
        "shoes",
        "ORD-B",
        "SALE-B",
        "CLICK-B",
        "sub-b",
        "a.example",
        "succeeded",
        None,
        200,
        10,
    ),
    "c": ("p1", "hook2", "hats", "ORD-C", "SALE-C", None, None, "b.example", "failed", "timeout", None, 20),
    "d": (
        "p2",
        "hook3",
        "hats",
        "ORD-D",
        "SALE-D",
        "CLICK-D",
        "sub-d",
        "c.example",
        "pending",
        None,
        None,
        30,
    ),
    "e": (
        "p2",
        "hook3",
        "shoes",
        "ORD-E",
        "SALE-E",
        "CLICK-E",
        "sub-a",
        "c.example:8443",  # a URL with its port: kept with it
        "failed",
        "http_status",
        500,
        60 * 25,
    ),
}


def build_network(app: Flask) -> Network:
    ids: dict[str, int] = {}
    transactions: dict[str, int] = {}
    with get_db(app).session() as session:
        publishers = {key: factories.publisher(session) for key in ("p1", "p2")}
        programs = {key: factories.program(session, name=key.title()) for key in ("shoes", "hats")}
        hooks = {
            "hook1": factories.postback(session, publishers["p1"], name="Voluum"),
            "hook2": factories.postback(session, publishers["p1"], name="Keitaro"),
            "hook3": factories.postback(session, publishers["p2"], name="RedTrack"),
        }
        for name, row in SPEC.items():
            pub, hook, shop, order, sales, click_id, fobs, host, state, error, status, minutes = row
            owner, program = publishers[pub], programs[shop]
            clicked = None
            if click_id:
                clicked = Click(click_id=click_id, publisher_id=owner.id, program_id=program.id, fobs=fobs)
                session.add(clicked)
                session.flush()
            sale = factories.transaction(
                session,
                owner,
                program,
                order_number=order,
                sales_id=sales,
                click_pk=clicked.id if clicked else None,
            )
            at = T0 + timedelta(minutes=minutes)
            done = state != "pending"
            delivery = factories.delivery(
                session,
                hooks[hook],
                factories.event(session, sale),
                state=state,
                destination_host=host,
                last_error_class=error,
                last_status_code=status,
                attempt_count=1 if done else 0,
                created_at=at,
                completed_at=at + timedelta(seconds=1) if done else None,
            )
            if done:
                session.add(
                    Attempt(
                        delivery_id=delivery.id,
                        number=1,
                        outcome=state,
                        started_at=at,
                        duration_ms=120,
                        method="GET",
                        url=f"http://{host}/pb?order={order}",
                        request_headers={"User-Agent": "PostbackDispatcher/1"},
                        resolved_ip="203.0.113.7",
                        status_code=status,
                        response_headers={"X-Tracker": HOSTILE},
                        response_excerpt=HOSTILE if state == "failed" else "OK",
                        error_class=error,
                        error_message="Not Found" if status == 404 else None,
                    )
                )
            ids[name], transactions[name] = delivery.id, sale.id
        return Network(
            ids,
            {key: row.id for key, row in publishers.items()},
            {key: row.id for key, row in hooks.items()},
            {key: row.id for key, row in programs.items()},
            {key: row.advertiser_id for key, row in programs.items()},
            transactions,
        )


@pytest.fixture
def network(app: Flask) -> Network:
    return build_network(app)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 answering from a script (see tests/workers/conftest.py)."""
    server = Receiver()
    yield server
    server.close()
