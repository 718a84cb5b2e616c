"""A small network for the ledger's tests: one advertiser with a program, one publisher with two sources."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from dispatcher import accounts
from dispatcher.db import Database, get_db
from tests.dispatcher import factories


@dataclass
class Network:
    app: Flask
    client: FlaskClient
    advertiser_id: int
    api_key: str
    s2s_token: str
    program_id: int
    publisher_id: int
    source_id: int
    other_source_id: int

    def session(self) -> Any:
        return get_db(self.app).session()

    def click(self, program_id: int | None = None, source_id: int | None = None, **subs: str) -> str:
        """A real click through GET /c/...; returns the network click id from the redirect."""
        query = {"pub": self.publisher_id, "ts": source_id or self.source_id, **subs}
        response = self.client.get(f"/c/{program_id or self.program_id}", query_string=query)
        assert response.status_code == 302, response.data
        return parse_qs(urlsplit(response.headers["Location"]).query)["clickid"][0]

    def report(self, body: dict[str, Any], api_key: str | None = None) -> TestResponse:
        headers = {"Authorization": f"Bearer {api_key or self.api_key}"}
        return self.client.post("/api/v1/transactions", json=body, headers=headers)

    def sale(self, **fields: Any) -> dict[str, Any]:
        """Report a sale on a fresh click; fields override the defaults. Returns the 201 body."""
        body = {
            "click_id": self.click(),
            "order_number": f"o-{factories.next_number()}",
            "sale_amount": "100.00",
        }
        response = self.report({**body, **fields})
        assert response.status_code == 201, response.json
        payload: dict[str, Any] = response.json  # type: ignore[assignment]
        return payload

    def change(self, sales_id: str, body: dict[str, Any]) -> TestResponse:
        return self.client.post(
            f"/api/v1/transactions/{sales_id}/status",
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}"},
        )

    def postback(self, **fields: Any) -> int:
        with self.session() as session:
            publisher = session.get_one(factories.Publisher, self.publisher_id)
            return factories.postback(session, publisher, **fields).id


def build_network(app: Flask, session: Session, **program: Any) -> dict[str, Any]:
    advertiser = accounts.create_advertiser(session, "Shoe Shop")
    shop = accounts.create_program(
        session,
        advertiser.advertiser.id,
        "Shoes US",
        landing_url="https://shop.example/landing?utm=aff",
        commission=program.pop("commission", "10%"),
        **program,
    )
    publisher = accounts.create_publisher(session, "Acme Media", "ops@acme.example", "long-password")
    blog = accounts.create_traffic_source(session, publisher.publisher.id, "Blog")
    newsletter = accounts.create_traffic_source(session, publisher.publisher.id, "Newsletter")
    return {
        "advertiser_id": advertiser.advertiser.id,
        "api_key": advertiser.api_key,
        "s2s_token": advertiser.s2s_token,
        "program_id": shop.id,
        "publisher_id": publisher.publisher.id,
        "source_id": blog.id,
        "other_source_id": newsletter.id,
    }


@pytest.fixture
def network(app: Flask, client: FlaskClient) -> Iterator[Network]:
    with get_db(app).session() as session:
        ids = build_network(app, session)
    yield Network(app=app, client=client, **ids)


def money(value: str) -> Decimal:
    return Decimal(value)


@contextmanager
def statements_run(database: Database) -> Iterator[list[str]]:
    """Every SQL statement the database driver is given meanwhile, whoever runs it (the ORM, Core, or SQL
    sent to the driver directly), BEGIN and COMMIT included.

    Connections are traced as they are checked out of the pool; the database is disposed of before and
    after, so the block makes its own, traced, and none stays traced."""
    engine = database.engine
    statements: list[str] = []

    def traced(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if engine.dialect.name == "sqlite":
            dbapi_connection.set_trace_callback(statements.append)
        else:  # psycopg: its cursors are made by the connection's cursor_factory
            dbapi_connection.cursor_factory = _recording_cursor(statements)

    def untraced(dbapi_connection: Any, _record: Any) -> None:
        if engine.dialect.name == "sqlite":
            dbapi_connection.set_trace_callback(None)
        else:
            import psycopg

            dbapi_connection.cursor_factory = psycopg.Cursor

    database.dispose()
    event.listen(engine, "checkout", traced)
    event.listen(engine, "checkin", untraced)
    try:
        yield statements
    finally:
        event.remove(engine, "checkout", traced)
        event.remove(engine, "checkin", untraced)
        database.dispose()


def _recording_cursor(statements: list[str]) -> Any:
    import psycopg

    class RecordingCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(str(query))
            return super().execute(query, *args, **kwargs)

    return RecordingCursor
