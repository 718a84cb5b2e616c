"""The six callers of the authorization matrix, each authenticating the way it really does: publishers,
staff and the advertiser's portal user sign in through their login form (with the form's CSRF token) for
pages; publishers and staff send their bearer token to /api/v1, the advertiser its API key (and its S2S
token as `token=`); anonymous sends nothing.

Each caller has its own client address (TEST-NET-3, so it is a remote user, not this host) so that one
caller's failed logins never count against another's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from dispatcher.models import Base
from tests.security.authz_network import PASSWORD, Network

ROLES = ("anonymous", "publisher_a", "publisher_b", "advertiser", "support", "admin")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
USER_AGENT = "authz-matrix"


@dataclass
class Caller:
    role: str
    client: FlaskClient
    address: str
    email: str | None = None  # the login of publishers and staff
    login_path: str | None = None  # /portal/login, /support/login or /advertiser/login
    token: str | None = None  # bearer token for /api/v1 (pub_, adv_ or stf_)
    s2s_token: str | None = None
    csrf: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def owner(self) -> str | None:
        """A or B for the two publishers."""
        return {"publisher_a": "A", "publisher_b": "B"}.get(self.role)


def make_callers(app: Flask, network: Network) -> dict[str, Caller]:
    callers = {}
    for number, role in enumerate(ROLES, start=10):
        caller = Caller(role, _client(app, number), f"203.0.113.{number}")
        if role.startswith("publisher_"):
            party = network.party(role[-1].upper())
            caller.email, caller.login_path, caller.token = party.email, "/portal/login", party.token
        elif role in ("support", "admin"):
            member = network.staff[role]
            caller.email, caller.login_path, caller.token = member.email, "/support/login", member.token
        elif role == "advertiser":
            caller.email, caller.login_path = network.advertiser_user_email, "/advertiser/login"
            caller.token, caller.s2s_token = network.api_key, network.s2s_token
        sign_in(caller)
        callers[role] = caller
    return callers


def _client(app: Flask, number: int) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR=f"203.0.113.{number}", HTTP_USER_AGENT=USER_AGENT)
    return client


def fresh_caller(app: Flask, caller: Caller) -> Caller:
    """A second browser of the same caller, signed in on its own (for login and logout)."""
    number = int(caller.address.rsplit(".", 1)[1])
    twin = Caller(
        caller.role,
        _client(app, number),
        caller.address,
        caller.email,
        caller.login_path,
        caller.token,
        caller.s2s_token,
    )
    sign_in(twin)
    return twin


def sign_in(caller: Caller) -> None:
    """Through the real form, with its CSRF token; anyone without a login just gets a session's token."""
    if caller.login_path is None:
        caller.csrf = csrf_from(caller.client, "/portal/login")
        return
    token = csrf_from(caller.client, caller.login_path)
    response = caller.client.post(
        caller.login_path, data={"email": caller.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, f"{caller.role} could not sign in: {response.status_code}"
    caller.csrf = csrf_from(caller.client, _FORM_PAGES.get(caller.role, "/portal/sources"))


_FORM_PAGES = {"support": "/support/login", "admin": "/support/login", "advertiser": "/advertiser/upload"}


def csrf_from(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    if response.status_code == 302:  # a signed-in caller's login page sends it on: read the form there
        response = client.get(response.location)
    found = CSRF_FIELD.search(response.get_data(as_text=True))
    assert found, f"no CSRF field on {path} ({response.status_code})"
    return found.group(1)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary key order: equal snapshots mean nothing was written."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows[table.name] = [tuple(row) for row in connection.execute(select(table).order_by(*order))]
    return rows


def changed_tables(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> list[str]:
    return sorted(name for name in before if before[name] != after.get(name))
