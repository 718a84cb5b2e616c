"""A small real network for the API tests: every kind of credential, a click, a postback to a local receiver,
a sale, and its delivery sent by a real `flask worker --burst` process."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from dispatcher import accounts
from dispatcher.db import get_db
from dispatcher.models import (
    Attempt,
    Click,
    Delivery,
    Postback,
    StaffUser,
    Transaction,
    TransactionEvent,
)
from dispatcher.staff_auth import issue_token
from tests.portal.conftest import Receiver
from tests.workers.conftest import work_burst, worker_env

# The tables a request may write to: a refused request must leave every count as it was.
WRITTEN_TABLES = (Click, Transaction, TransactionEvent, Delivery, Attempt, Postback)


@dataclass(frozen=True)
class World:
    app: Flask
    receiver: Receiver
    publisher_token: str
    other_publisher_token: str
    staff_token: str
    api_key: str
    s2s_token: str
    publisher_id: int
    traffic_source_id: int
    program_id: int
    click_id: str
    postback_id: int
    sales_id: str
    delivery_id: int  # sent by the worker: succeeded, with one attempt

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()


def row_counts(app: Flask) -> dict[str, int]:
    with get_db(app).session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in WRITTEN_TABLES
        }


def build(app: Flask, receiver: Receiver, database_url: str, redis_url: str, tmp_path: Path) -> World:
    suffix = uuid.uuid4().hex[:8]
    with get_db(app).session() as session:
        publisher = accounts.create_publisher(
            session, "Api Publisher", f"api-{suffix}@pub.test", "long-password"
        )
        other = accounts.create_publisher(
            session, "Other Publisher", f"other-{suffix}@pub.test", "long-password"
        )
        source = accounts.create_traffic_source(session, publisher.publisher.id, "Coupons")
        advertiser = accounts.create_advertiser(session, "Shoe Shop")
        program = accounts.create_program(
            session,
            advertiser.advertiser.id,
            "Shoes",
            landing_url="https://shop.example/?ref={clickid}",
            commission="10%",
        )
        staff = accounts.create_staff(session, f"staff-{suffix}@network.test", "long-password")
        session.flush()
        staff_token = issue_token(session.get(StaffUser, staff.id) or staff)
        ids = (publisher.publisher.id, source.id, program.id)
        session.commit()
    publisher_id, source_id, program_id = ids
    client = app.test_client()
    clicked = client.get(f"/c/{program_id}?pub={publisher_id}&ts={source_id}&fobs=their-click-id")
    assert clicked.status_code == 302, clicked.get_data(as_text=True)
    click_id = parse_qs(urlsplit(clicked.headers["Location"]).query)["ref"][0]
    pub_auth = {"Authorization": f"Bearer {publisher.api_token}"}
    created = client.post(
        "/api/v1/postbacks",
        headers=pub_auth,
        json={"name": "Local", "url": f"{receiver.url}/pb?cid=#fobs#&payout=#ca#&status=#status#"},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    sale = client.post(
        "/api/v1/transactions",
        headers={"Authorization": f"Bearer {advertiser.api_key}"},
        json={"click_id": click_id, "order_number": f"A-{suffix}", "sale_amount": "249.90"},
    )
    assert sale.status_code == 201 and sale.json and sale.json["deliveries"] == 1, sale.get_data(as_text=True)
    work_burst(worker_env(database_url, redis_url, tmp_path))
    log = client.get("/api/v1/deliveries", headers=pub_auth).json
    assert log and log["deliveries"][0]["state"] == "succeeded", log
    return World(
        app=app,
        receiver=receiver,
        publisher_token=publisher.api_token,
        other_publisher_token=other.api_token,
        staff_token=staff_token,
        api_key=advertiser.api_key,
        s2s_token=advertiser.s2s_token,
        publisher_id=publisher_id,
        traffic_source_id=source_id,
        program_id=program_id,
        click_id=click_id,
        postback_id=created.json["id"] if created.json else 0,
        sales_id=sale.json["sales_id"],
        delivery_id=log["deliveries"][0]["id"],
    )
