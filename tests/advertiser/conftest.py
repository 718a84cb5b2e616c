"""Advertiser portal fixtures: an advertiser with a program and a portal user, a publisher whose postback
points at a real local receiver, sales reported through the real API, and a signed-in client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dispatcher import accounts
from dispatcher.db import get_db
from dispatcher.models import Postback
from tests.dispatcher import factories
from tests.portal.conftest import CSRF_FIELD, PASSWORD
from tests.workers.conftest import Receiver

HOOK_PATH = "/hook"


@dataclass(frozen=True)
class Shop:
    advertiser_id: int
    api_key: str
    s2s_token: str
    program_id: int
    user_id: int
    email: str
    publisher_id: int
    source_id: int
    postback_id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_shop(app: Flask, receiver_url: str, name: str = "Shop") -> Shop:
    n = factories.next_number()
    with get_db(app).session() as session:
        advertiser = accounts.create_advertiser(session, f"{name} {n}")
        program = accounts.create_program(
            session,
            advertiser.advertiser.id,
            f"{name} US",
            landing_url="https://shop.example/",
            commission="10%",
        )
        user = accounts.create_advertiser_user(
            session, advertiser.advertiser.id, f"adv{n}@shop.test", PASSWORD
        )
        publisher = accounts.create_publisher(session, f"Publisher {n}", f"pub{n}@adv.test", PASSWORD)
        source = accounts.create_traffic_source(session, publisher.publisher.id, "Blog")
        hook = Postback(
            publisher_id=publisher.publisher.id,
            url_template=f"{receiver_url}{HOOK_PATH}?order=#on#&status=#status#&sale=#flx_salesid#",
            events=["sale", "lead", "approved", "declined", "reversed", "adjusted"],
            statuses=["pending", "approved", "declined", "reversed"],
        )
        session.add(hook)
        session.commit()
        return Shop(
            advertiser.advertiser.id,
            advertiser.api_key,
            advertiser.s2s_token,
            program.id,
            user.id,
            user.email,
            publisher.publisher.id,
            source.id,
            hook.id,
        )


def report_sale(client: FlaskClient, shop: Shop, order_number: str, amount: str = "100.00") -> str:
    """A click on the shop's program and a sale reported on it through the API; returns the sales id."""
    click = client.get(
        f"/c/{shop.program_id}", query_string={"pub": shop.publisher_id, "ts": shop.source_id, "fobs": "trk"}
    )
    assert click.status_code == 302, click.get_data(as_text=True)
    click_id = click.location.split("clickid=")[1].split("&")[0]
    sale = client.post(
        "/api/v1/transactions",
        json={"click_id": click_id, "order_number": order_number, "sale_amount": amount},
        headers=shop.auth,
    )
    assert sale.status_code == 201, sale.get_data(as_text=True)
    sales_id: str = sale.get_json()["sales_id"]
    return sales_id


def csrf_of(client: FlaskClient, path: str) -> str:
    found = CSRF_FIELD.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def advertiser_log_in(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    token = csrf_of(client, "/advertiser/login")
    response = client.post(
        "/advertiser/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def shop(app: Flask, receiver: Receiver, clean_redis: redis.Redis) -> Shop:
    return make_shop(app, receiver.url(""))


@pytest.fixture
def other_shop(app: Flask, receiver: Receiver) -> Shop:
    return make_shop(app, receiver.url(""), "Other")


@pytest.fixture
def adv(client: FlaskClient, shop: Shop) -> FlaskClient:
    """A client signed in as the shop's portal user."""
    advertiser_log_in(client, shop.email)
    return client


@pytest.fixture
def csrf(adv: FlaskClient) -> str:
    return csrf_of(adv, "/advertiser/upload")


@dataclass(frozen=True)
class AdvertiserLogin:
    id: int
    email: str
    advertiser_id: int


def make_advertiser_user(app: Flask, advertiser_id: int) -> AdvertiserLogin:
    """Another portal user of an existing advertiser."""
    email = f"adv-user{factories.next_number()}@shop.test"
    with get_db(app).session() as session:
        user = accounts.create_advertiser_user(session, advertiser_id, email, PASSWORD)
        session.commit()
        return AdvertiserLogin(user.id, email, advertiser_id)
