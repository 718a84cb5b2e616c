"""Portal fixtures: publishers with passwords and API tokens, a logged-in browser-like client, CSRF tokens."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dispatcher import accounts
from dispatcher.db import get_db

PASSWORD = "correct-horse-battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_publisher(app: Flask, name: str | None = None) -> Account:
    n = next(_numbers)
    email = f"publisher{n}@portal.test"
    with get_db(app).session() as session:
        created = accounts.create_publisher(session, name or f"Publisher {n}", email, PASSWORD)
        return Account(created.publisher.id, email, created.api_token)


def add_source(app: Flask, owner: Account, name: str) -> int:
    with get_db(app).session() as session:
        return accounts.create_traffic_source(session, owner.id, name).id


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
def clean_redis(redis_url: str) -> Iterator[redis.Redis]:
    """The suite's private Redis (never the machine's), emptied so login counters start at zero."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


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
