"""Login rate limits of the consoles (portal, support, advertiser): after 5 failures for one email from one
address, or 100 from one address, even the right password is refused (429) until the window passes. The
counters are in Redis, so two web processes (two gunicorn workers, two hosts) share them; with Redis down
each process still counts."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from dispatcher import login_limits
from dispatcher.db import get_db
from dispatcher.login_limits import LoginLimiter
from dispatcher.models import Base
from tests.conftest import app_settings
from tests.security.test_web_security_sessions import CONSOLES, PORTAL, Console

PASSWORD = "correct-horse-battery"


def make_app(tmp_path: Path, database_url: str, redis_url: str) -> Flask:
    app = create_app(app_settings(tmp_path, database_url, redis_url))
    Base.metadata.create_all(get_db(app).engine)
    return app


@pytest.fixture
def app(tmp_path: Path, sqlite_url: str, clean_redis: redis.Redis, redis_url: str) -> Iterator[Flask]:
    """SQLite: the limits live in Redis, whatever the database."""
    app = make_app(tmp_path, sqlite_url, redis_url)
    yield app
    get_db(app).dispose()


def attempt(client: FlaskClient, console: Console, email: str, password: str, ip: str = "127.0.0.1") -> int:
    client.environ_base["REMOTE_ADDR"] = ip
    data = {"email": email, "password": password, "csrf_token": console.token(client)}
    return client.post(console.login, data=data).status_code


@pytest.mark.parametrize("console", CONSOLES)
def test_five_failures_for_one_email_lock_it_from_that_address_even_with_the_right_password(
    app: Flask, console: Console
) -> None:
    _, email = console.account(app)
    client = app.test_client()

    failures = [attempt(client, console, email, "wrong-password") for _ in range(5)]

    assert failures == [401] * 5
    assert attempt(client, console, email, PASSWORD) == 429
    assert attempt(client, console, email.upper(), PASSWORD) == 429  # the same email, however written
    assert attempt(client, console, email, PASSWORD, ip="198.51.100.7") == 302  # another address


@pytest.mark.parametrize("console", CONSOLES)
def test_a_hundred_failures_from_one_address_lock_it_for_every_email(
    app: Flask, console: Console, clean_redis: redis.Redis
) -> None:
    _, email = console.account(app)
    prefix = f"{console.name}:login"
    limiter = LoginLimiter(clean_redis, prefix=prefix)
    for n in range(login_limits.MAX_PER_IP - 1):  # as if 99 other emails had been tried from this address
        limiter.failed("203.0.113.9", f"guess{n}@example.test")
    client = app.test_client()

    assert attempt(client, console, "guess-last@example.test", "wrong", ip="203.0.113.9") == 401
    assert attempt(client, console, email, PASSWORD, ip="203.0.113.9") == 429
    assert attempt(client, console, email, PASSWORD, ip="203.0.113.10") == 302


def test_the_count_is_shared_by_two_web_processes(
    tmp_path: Path, sqlite_url: str, redis_url: str, clean_redis: redis.Redis
) -> None:
    """Two app instances with their own state, as two gunicorn workers are, and the same Redis: failures
    counted by one lock the login in the other."""
    first = make_app(tmp_path / "a", sqlite_url, redis_url)
    second = make_app(tmp_path / "b", sqlite_url, redis_url)
    _, email = PORTAL.account(first)

    statuses = [
        attempt((first if n % 2 else second).test_client(), PORTAL, email, "wrong-password") for n in range(5)
    ]

    assert statuses == [401] * 5
    assert attempt(second.test_client(), PORTAL, email, PASSWORD) == 429
    assert attempt(first.test_client(), PORTAL, email, PASSWORD) == 429
    for app in (first, second):
        get_db(app).dispose()


def test_the_lock_ends_when_the_window_passes(
    app: Flask, monkeypatch: pytest.MonkeyPatch, clean_redis: redis.Redis
) -> None:
    monkeypatch.setattr(login_limits, "WINDOW_S", 2)  # Redis expires the counters; 15 minutes in production
    _, email = PORTAL.account(app)
    client = app.test_client()
    for _ in range(5):
        attempt(client, PORTAL, email, "wrong-password")
    assert attempt(client, PORTAL, email, PASSWORD) == 429

    while clean_redis.keys("portal:login:pair:*"):
        time.sleep(0.2)

    assert attempt(client, PORTAL, email, PASSWORD) == 302


@pytest.mark.parametrize("console", CONSOLES)
def test_with_redis_down_each_process_still_limits_failures(
    tmp_path: Path, sqlite_url: str, console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    closed = "redis://127.0.0.1:9/0"  # nothing listens on the discard port: connections are refused
    app = make_app(tmp_path, sqlite_url, closed)
    _, email = console.account(app)
    client = app.test_client()
    ip = f"192.0.2.{10 if console.name == 'portal' else 11}"  # counters of this process: fresh address

    with caplog.at_level(logging.WARNING, logger=login_limits.__name__):
        failures = [attempt(client, console, email, "wrong-password", ip=ip) for _ in range(5)]
        locked = attempt(client, console, email, PASSWORD, ip=ip)

    assert failures == [401] * 5 and locked == 429
    assert "counted in this process only, Redis unavailable" in caplog.text
    assert attempt(client, console, email, PASSWORD, ip="192.0.2.99") == 302  # others still sign in
    get_db(app).dispose()
