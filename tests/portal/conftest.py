"""Portal fixtures: publishers with passwords and API tokens, a logged-in browser-like client, CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dispatcher import account_edits, accounts
from dispatcher.db import get_db
from tests.dispatcher import factories
from tests.serving import serve_in_thread

PASSWORD = "correct-horse-battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_publisher(app: Flask, name: str | None = None) -> Account:
    n = factories.next_number()  # one counter for the run: this conftest is also imported by name
    email = f"publisher{n}@portal.test"
    with get_db(app).session() as session:
        created = accounts.create_publisher(session, name or f"Publisher {n}", email, PASSWORD)
        return Account(created.publisher.id, email, created.api_token)


def add_source(app: Flask, owner: Account, name: str) -> int:
    with get_db(app).session() as session:
        return accounts.create_traffic_source(session, owner.id, name).id


def deactivate_source(app: Flask, owner: Account, source_id: int) -> None:
    """As the network's admin does: the source's new clicks are refused."""
    with get_db(app).session() as session:
        account_edits.set_traffic_source_active(session, owner.id, source_id, False)


def csrf_token(client: FlaskClient, path: str = "/portal/login") -> str:
    page = client.get(path)
    found = CSRF_FIELD.search(page.get_data(as_text=True))
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def log_in(client: FlaskClient, owner: Account, password: str = PASSWORD) -> None:
    response = client.post(
        "/portal/login", data={"email": owner.email, "password": password, "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def publisher(app: Flask, clean_redis: redis.Redis) -> Account:
    return make_publisher(app)


@pytest.fixture
def other(app: Flask) -> Account:
    return make_publisher(app)


@pytest.fixture
def portal(client: FlaskClient, publisher: Account) -> FlaskClient:
    """A client logged in as `publisher`."""
    log_in(client, publisher)
    return client


@pytest.fixture
def token(portal: FlaskClient) -> str:
    """A CSRF token of the logged-in session."""
    return csrf_token(portal, "/portal/postbacks/new")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it receives and answers as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self.body = b"OK received"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                owner.received.append(
                    Received(self.command, self.path, dict(self.headers), self.rfile.read(length))
                )
                self.send_response(owner.status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            do_GET = do_POST = _answer

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = serve_in_thread(self.server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
