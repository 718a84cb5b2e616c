"""Behind a reverse proxy: TRUSTED_PROXIES=n trusts the right-most n values of X-Forwarded-For, -Proto and
-Host (werkzeug's ProxyFix, wrapped outside every other middleware); 0, the default, reads none of them.

"The proxy" in these tests is the connecting address 10.0.0.2 (the test client's REMOTE_ADDR) adding its
headers; the visitor is the address the proxy appends last."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask, jsonify, request, url_for
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix

from app import create_app
from dispatcher import login_limits
from dispatcher.db import get_db
from dispatcher.login_limits import LoginLimiter
from dispatcher.models import Base, Click
from dispatcher.web.access_log import AccessLog
from dispatcher.web.fast_path import FastPath
from tests.conftest import app_settings
from tests.dispatcher.ledger.conftest import build_network
from tests.security.test_web_security_sessions import CONSOLES, PORTAL, Console

PROXY = "10.0.0.2"
VISITOR = "203.0.113.9"
OTHER_VISITOR = "198.51.100.7"
PASSWORD = "correct-horse-battery"
METRICS_TOKEN = "metrics-token-0123456789"


@contextmanager
def make_app(tmp_path: Path, database_url: str, redis_url: str, **extra: Any) -> Iterator[Flask]:
    app = create_app(app_settings(tmp_path, database_url, redis_url, **extra))
    Base.metadata.create_all(get_db(app).engine)
    yield app
    get_db(app).dispose()


@pytest.fixture
def proxied(tmp_path: Path, sqlite_url: str, redis_url: str, clean_redis: redis.Redis) -> Iterator[Flask]:
    """One trusted proxy; SQLite, as login limits live in Redis whatever the database."""
    with make_app(tmp_path / "proxied", sqlite_url, redis_url, TRUSTED_PROXIES=1) as app:
        yield app


@pytest.fixture
def direct(tmp_path: Path, sqlite_url: str, redis_url: str, clean_redis: redis.Redis) -> Iterator[Flask]:
    """The default: no proxy trusted."""
    with make_app(tmp_path / "direct", sqlite_url, redis_url) as app:
        yield app


def through_proxy(client: FlaskClient, forwarded_for: str | None = None) -> FlaskClient:
    client.environ_base["REMOTE_ADDR"] = PROXY
    if forwarded_for is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def login(client: FlaskClient, console: Console, email: str, password: str) -> int:
    data = {"email": email, "password": password, "csrf_token": console.token(client)}
    return client.post(console.login, data=data).status_code


def limiter_of(console: Console, client: redis.Redis) -> LoginLimiter:
    return LoginLimiter(client, prefix=f"{console.name}:login")


def fail_from(limiter: LoginLimiter, address: str, times: int) -> None:
    for n in range(times):
        limiter.failed(address, f"guess{n}@example.test")


def test_proxy_fix_wraps_the_fast_path_only_when_a_proxy_is_trusted(proxied: Flask, direct: Flask) -> None:
    # The access log wraps the fast path, to log its clicks too; ProxyFix wraps both (for the fast path's
    # REMOTE_ADDR).
    assert isinstance(proxied.wsgi_app, ProxyFix)
    assert isinstance(proxied.wsgi_app.app, AccessLog)
    assert isinstance(proxied.wsgi_app.app.app, FastPath)
    assert isinstance(direct.wsgi_app, AccessLog)
    assert isinstance(direct.wsgi_app.app, FastPath)


@pytest.mark.parametrize("console", CONSOLES)
def test_behind_a_trusted_proxy_each_visitor_address_has_its_own_limit(
    proxied: Flask, console: Console, clean_redis: redis.Redis
) -> None:
    _, email = console.account(proxied)
    fail_from(limiter_of(console, clean_redis), VISITOR, login_limits.MAX_PER_IP)

    blocked = login(through_proxy(proxied.test_client(), VISITOR), console, email, PASSWORD)
    other = login(through_proxy(proxied.test_client(), OTHER_VISITOR), console, email, PASSWORD)

    assert (blocked, other) == (429, 302)


def test_behind_a_trusted_proxy_five_failures_lock_the_email_for_that_visitor_only(proxied: Flask) -> None:
    _, email = PORTAL.account(proxied)
    attacker = through_proxy(proxied.test_client(), VISITOR)

    failures = [login(attacker, PORTAL, email, "wrong-password") for _ in range(5)]

    assert failures == [401] * 5
    assert login(attacker, PORTAL, email, PASSWORD) == 429
    assert login(through_proxy(proxied.test_client(), OTHER_VISITOR), PORTAL, email, PASSWORD) == 302


def test_a_visitor_cannot_evade_the_limit_with_its_own_x_forwarded_for(
    proxied: Flask, clean_redis: redis.Redis
) -> None:
    """The proxy appends the address it saw to what the visitor sent: only the right-most value is trusted."""
    _, email = PORTAL.account(proxied)
    fail_from(limiter_of(PORTAL, clean_redis), VISITOR, login_limits.MAX_PER_IP)
    spoofing = through_proxy(proxied.test_client(), f"{OTHER_VISITOR}, 127.0.0.1, {VISITOR}")

    assert login(spoofing, PORTAL, email, PASSWORD) == 429


def test_without_a_trusted_proxy_a_sent_x_forwarded_for_changes_nothing(
    direct: Flask, clean_redis: redis.Redis
) -> None:
    _, email = PORTAL.account(direct)
    fail_from(limiter_of(PORTAL, clean_redis), PROXY, login_limits.MAX_PER_IP)

    spoofing = login(through_proxy(direct.test_client(), OTHER_VISITOR), PORTAL, email, PASSWORD)
    plain = login(through_proxy(direct.test_client()), PORTAL, email, PASSWORD)

    assert (spoofing, plain) == (429, 429)


@pytest.mark.parametrize(
    ("trusted", "forwarded_for", "recorded"),
    [
        (1, f"{OTHER_VISITOR}, {VISITOR}", VISITOR),  # the visitor's own value, then the proxy's
        (2, f"{OTHER_VISITOR}, {VISITOR}", OTHER_VISITOR),  # two proxies: the first one's view
        (0, f"{OTHER_VISITOR}, {VISITOR}", PROXY),
        (1, None, PROXY),  # nothing forwarded: the connecting address
    ],
)
def test_a_click_records_the_address_the_trusted_proxies_forwarded(
    tmp_path: Path, database_url: str, redis_url: str, trusted: int, forwarded_for: str | None, recorded: str
) -> None:
    with make_app(tmp_path, database_url, redis_url, TRUSTED_PROXIES=trusted) as app:
        with get_db(app).session() as session:
            ids = build_network(app, session)
        client = through_proxy(app.test_client(), forwarded_for)
        query = {"pub": ids["publisher_id"], "ts": ids["source_id"]}

        response = client.get(f"/c/{ids['program_id']}", query_string=query)

        assert response.status_code == 302
        with get_db(app).session() as session:
            assert session.scalars(select(Click.ip)).all() == [recorded]


def probe(app: Flask) -> FlaskClient:
    """A route showing what a view sees of the request: the URL it would link to and the visitor."""

    @app.get("/_probe")
    def show() -> Any:
        return jsonify(
            url=url_for("health.healthz", _external=True),
            secure=request.is_secure,
            remote_addr=request.remote_addr,
        )

    return through_proxy(app.test_client())


FORWARDED = {"X-Forwarded-For": VISITOR, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "track.example"}


def test_behind_a_trusted_proxy_views_see_https_the_public_host_and_the_visitor(proxied: Flask) -> None:
    seen = probe(proxied).get("/_probe", headers=FORWARDED).json

    assert seen == {"url": "https://track.example/healthz", "secure": True, "remote_addr": VISITOR}


def test_without_a_trusted_proxy_forwarded_scheme_and_host_are_ignored(direct: Flask) -> None:
    seen = probe(direct).get("/_probe", headers=FORWARDED).json

    assert seen == {"url": "http://localhost/healthz", "secure": False, "remote_addr": PROXY}


@pytest.mark.parametrize(
    ("connecting", "headers", "status"),
    [
        ("127.0.0.1", {}, 200),  # a scraper on this host, straight to the app
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}, 403),  # through a proxy on this host
        (PROXY, {"X-Forwarded-For": "127.0.0.1"}, 403),  # through the proxy, claiming to be local
        (PROXY, {"X-Forwarded-Proto": "https"}, 403),
        (PROXY, {}, 403),
    ],
)
def test_behind_a_trusted_proxy_metrics_are_still_only_served_to_direct_local_scrapes(
    proxied: Flask, connecting: str, headers: dict[str, str], status: int
) -> None:
    response = proxied.test_client().get(
        "/metrics", headers=headers, environ_base={"REMOTE_ADDR": connecting}
    )

    assert response.status_code == status


def test_behind_a_trusted_proxy_the_metrics_token_scrapes_through_it(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    with make_app(tmp_path, sqlite_url, redis_url, TRUSTED_PROXIES=1, METRICS_TOKEN=METRICS_TOKEN) as app:
        client = through_proxy(app.test_client(), "127.0.0.1")

        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
