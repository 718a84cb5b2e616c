"""The bare implementation `bench.intake` measures the app against: it does the same work with the same SQL.

On PostgreSQL (the bare app is PostgreSQL only). The statements each side sends are recorded where both send
them, psycopg's `Cursor.execute`, so a change to the app's SQL fails here until it is copied into
`bench/_bare.py` again: a baseline sending other statements would measure something else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from flask import Flask
from sqlalchemy import func, select
from werkzeug.test import Client

from app import create_app
from bench import _bare
from dispatcher import accounts
from dispatcher.db import Database, get_db
from dispatcher.models import Click, Delivery, Postback, Transaction, TransactionEvent
from tests.conftest import CHEAP_PASSWORDS, app_settings

pytestmark = pytest.mark.postgres

LANDING = "https://shop.example/landing?utm=aff"


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url, password_method=CHEAP_PASSWORDS)
    yield database
    database.dispose()


@pytest.fixture
def network(database: Database) -> dict[str, Any]:
    """An advertiser (with its API key), a program at 10%, a publisher with a traffic source, a postback of
    every sale, and a click."""
    with database.session() as session:
        shop = accounts.create_advertiser(session, "Shop")
        program = accounts.create_program(
            session, shop.advertiser.id, "Shop", landing_url=LANDING, commission="10%"
        )
        media = accounts.create_publisher(session, "Media", "media@example.test", "long-password")
        source = accounts.create_traffic_source(session, media.publisher.id, "Blog")
        session.add(Postback(publisher_id=media.publisher.id, url_template="https://t.example/?o=#on#"))
        click = Click(click_id="bench-click", program_id=program.id, publisher_id=media.publisher.id)
        session.add(click)
        return {"key": shop.api_key, "program": program.id, "pub": media.publisher.id, "ts": source.id}


@pytest.fixture
def bare(postgres_url: str, redis_url: str) -> Iterator[Client]:
    app = _bare.BareApp(postgres_url, redis_url)
    yield Client(app)
    app.close()


@pytest.fixture
def ours(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Flask]:
    app = create_app(app_settings(tmp_path, postgres_url, redis_url))
    yield app
    get_db(app).dispose()


def click_path(network: dict[str, Any]) -> str:
    return f"/c/{network['program']}?pub={network['pub']}&ts={network['ts']}&fobs=sub"


def sale(network: dict[str, Any], order: str = "A-1") -> dict[str, Any]:
    return {
        "json": {"click_id": "bench-click", "order_number": order, "sale_amount": "25.00"},
        "headers": {"Authorization": f"Bearer {network['key']}"},
    }


def count(database: Database, model: Any) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_click_is_recorded_and_redirected_with_its_click_id(
    bare: Client, database: Database, network: dict[str, Any]
) -> None:
    response = bare.get(click_path(network))

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{LANDING}&clickid=")
    with database.session() as session:
        recorded = session.scalar(select(Click).where(Click.click_id == location.rsplit("=", 1)[1]))
    assert recorded is not None and recorded.fobs == "sub" and recorded.traffic_source_id == network["ts"]


def test_a_sale_writes_its_rows_pushes_its_delivery_and_answers_as_the_app_does(
    bare: Client, database: Database, network: dict[str, Any], clean_redis: redis.Redis
) -> None:
    response = bare.post("/api/v1/transactions", **sale(network))

    assert response.status_code == 201
    body = response.get_json()
    assert sorted(body) == ["commission", "currency", "deliveries", "sales_id", "status"]
    assert (body["commission"], body["currency"], body["deliveries"], body["status"]) == (
        "2.50",
        "USD",
        1,
        "pending",
    )
    assert [count(database, model) for model in (Transaction, TransactionEvent, Delivery)] == [1, 1, 1]
    with database.session() as session:
        delivery_id = session.scalar(select(Delivery.id))
    assert [json.loads(job) for job in clean_redis.lrange(_bare.QUEUE, 0, -1)] == [[delivery_id]]


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer adv_000000000000_wrong", 401), ("Basic x", 401)],
)
def test_a_sale_without_a_good_key_is_refused_and_writes_nothing(
    bare: Client, database: Database, network: dict[str, Any], authorization: str | None, status: int
) -> None:
    report = sale(network)
    report["headers"] = {"Authorization": authorization} if authorization else {}

    assert bare.post("/api/v1/transactions", **report).status_code == status
    assert count(database, Transaction) == 0


def test_the_bare_app_sends_the_statements_the_app_sends(
    bare: Client, ours: Flask, network: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def recording(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        if query != ";":  # the pool's ping before handing out a connection (ours only)
            sent.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    get_db(ours).ping()  # the engine's first connection asks the server about itself: not a request's work
    monkeypatch.setattr(psycopg.Cursor, "execute", recording)
    client = ours.test_client()

    def statements(call: Any) -> list[str]:
        sent.clear()
        assert call().status_code in (201, 302)
        return list(sent)

    ours_click = statements(lambda: client.get(click_path(network)))
    bare_click = statements(lambda: bare.get(click_path(network)))
    ours_sale = statements(lambda: client.post("/api/v1/transactions", **sale(network, "A-1")))
    bare_sale = statements(lambda: bare.post("/api/v1/transactions", **sale(network, "A-2")))

    assert ours_click == bare_click == [_bare.RECORD_CLICK]
    expected = [
        _bare.KEY_CLICK_AND_POSTBACKS,
        _bare.INSERT_TRANSACTION,
        _bare.INSERT_EVENT,
        _bare.INSERT_DELIVERY,
    ]
    assert ours_sale == bare_sale == expected, "the app's SQL changed: copy it into bench/_bare.py again"
