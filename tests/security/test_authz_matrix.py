"""The authorization matrix: every route of the app x {anonymous, publisher A, publisher B, advertiser,
support, admin} x (for routes that name an object) A's object and B's object.

Each case asserts the exact status (and, for a 302, where it goes), that no response carries anything of
another party (B's postback URL, sub ids, ids, email, token or signing secret in what A, the advertiser or
anonymous get; another advertiser's sales in what this advertiser gets; hashes in what anyone gets), and, for
a state-changing route, that a refused request wrote nothing while an allowed one did write.

Decided rules (the table below is their detail):
- Someone else's object answers 404, exactly like a missing one, so ids do not tell what exists.
- Pages need a session of the right kind: anyone else is sent to that console's login (302), before any id
  is looked at. The publisher API answers 401 to anything but a publisher token (a staff token passes only
  on the delivery routes, where staff see every publisher's); the advertiser API and S2S to anything but
  the advertiser's own credentials. Support staff get 403 on the admin-only bulk replay and network
  administration (`/support/admin/...`), whose changes are tried on spare accounts.

A route missing from the table fails the test by name, and so does a row whose route no longer exists.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import redis
from flask import Flask

from app import create_app
from dispatcher.db import get_db
from dispatcher.models import Base
from dispatcher.support import bulk
from tests.conftest import app_settings, postgres_schema
from tests.portal.conftest import Receiver
from tests.security import authz_network as net
from tests.security.authz_callers import (
    ROLES,
    Caller,
    changed_tables,
    fresh_caller,
    make_callers,
    sign_in,
    snapshot,
)

# Routes that are not the app's own: Flask's static files.
EXCLUDED_ENDPOINTS = {"static"}
REDIS_DB = 13  # the suite's private Redis, a database of this module's own: queued jobs stay here


# ---------------------------------------------------------------------------------------------------------
# What a case expects
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Want:
    status: int
    to: str | None = None  # a 302's Location path starts with this
    changes: bool | None = None  # None: a refusal writes nothing, an allowed call to a `writes` row does

    def __str__(self) -> str:
        return f"{self.status} -> {self.to}" if self.to else str(self.status)


PORTAL_LOGIN = Want(302, "/portal/login")
SUPPORT_LOGIN = Want(302, "/support/login")
ADVERTISER_LOGIN = Want(302, "/advertiser/login")
LOGIN_PATHS = (PORTAL_LOGIN.to, SUPPORT_LOGIN.to, ADVERTISER_LOGIN.to)
Expect = Want | int
PerObject = dict[str, Expect]


def to(path: str, status: int = 302) -> Want:
    return Want(status, path)


def everyone(want: Expect) -> dict[str, Expect | PerObject]:
    return dict.fromkeys(ROLES, want)


def owners(own: Expect, foreign: Expect) -> dict[str, Expect | PerObject]:
    """Publisher A and B on their own object and on the other's."""
    return {"publisher_a": {"A": own, "B": foreign}, "publisher_b": {"A": foreign, "B": own}}


# A postback of A or B, scoped to its owner's traffic source or (after "+") to the other publisher's.
SCOPES = ("A", "B", "A+B's source", "B+A's source")


def scoped(own: Expect, foreign_source: Expect) -> dict[str, Expect | PerObject]:
    """Changing one's own postback: fine with one's own source, refused (naming the field) with another's;
    the other publisher's postback is a 404 whatever the source."""
    return {
        "publisher_a": {"A": own, "B": 404, "A+B's source": foreign_source, "B+A's source": 404},
        "publisher_b": {"A": 404, "B": own, "A+B's source": 404, "B+A's source": foreign_source},
    }


def portal(own: Expect, foreign: Expect = 404) -> dict[str, Expect | PerObject]:
    """A portal page: publishers only (their own objects), everyone else to the portal login."""
    return {**everyone(PORTAL_LOGIN), **owners(own, foreign)}


def publisher_api(own: Expect, foreign: Expect = 404) -> dict[str, Expect | PerObject]:
    return {**everyone(401), **owners(own, foreign)}


def support(ok: Expect) -> dict[str, Expect | PerObject]:
    return {**everyone(SUPPORT_LOGIN), "support": ok, "admin": ok}


def admin_only(ok: Expect) -> dict[str, Expect | PerObject]:
    return {**everyone(SUPPORT_LOGIN), "support": 403, "admin": ok}


def advertiser_api(own: Expect, foreign: Expect) -> dict[str, Expect | PerObject]:
    return {**everyone(401), "advertiser": {"A": own, "B": foreign}}


def advertiser_portal(own: Expect | PerObject) -> dict[str, Expect | PerObject]:
    """An advertiser portal page: the advertiser's portal user only, everyone else to its login."""
    return {**everyone(ADVERTISER_LOGIN), "advertiser": own}


# ---------------------------------------------------------------------------------------------------------
# The requests
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Ctx:
    app: Flask
    network: net.Network
    caller: Caller
    obj: str  # "A"/"B": whose object the request names; other labels where the row says
    main: Caller  # the caller's everyday client (`caller` is a second one on rows marked `fresh`)

    @property
    def party(self) -> net.Party:
        """The owner of the object named ("A", or "A" for "A+B's source")."""
        return self.network.party(self.obj[0])

    @property
    def source_id(self) -> int:
        """The traffic source the request scopes to: the object owner's, or the one after "+"."""
        owner = self.obj.split("+")[-1][0]
        return self.network.party(owner).source_id

    @property
    def me(self) -> net.Party:
        """The caller's own party (a publisher), else the object's owner: what a form is filled in with."""
        return self.network.party(self.caller.owner or (self.obj if self.obj in net.OWNERS else "A"))

    def spare_postback(self, active: bool = True) -> int:
        return net.spare_postback(self.app, self.network, self.obj, active=active)

    def spare_delivery(self) -> int:
        return net.spare_delivery(self.app, self.network, self.obj)

    def spare_publisher(self) -> tuple[int, int]:
        """A new publisher and its traffic source (for the administration rows)."""
        return net.spare_publisher(self.app, self.network)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(_numbers)}-{self.network.tag}"


_numbers = itertools.count(1)


@dataclass
class Req:
    path: str
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, Any] | None = None
    json: Any = None
    data: str | None = None
    content_type: str | None = None

    def echo(self) -> str:
        """Everything the caller sent: a marker found here is an echo, not a leak."""
        parts = [self.path, urlencode(self.query), json.dumps(self.json), self.data or ""]
        parts += [f"{key}={_sent(value)}" for key, value in (self.form or {}).items()]
        return "\n".join(parts)


@dataclass(frozen=True)
class Upload:
    """A file in a form: sent as a multipart file part, echoed as its text."""

    text: str
    name: str

    def part(self) -> tuple[io.BytesIO, str]:
        return io.BytesIO(self.text.encode()), self.name


def _sent(value: Any) -> str:
    return value.text if isinstance(value, Upload) else str(value)


Build = Callable[[Ctx], Req]


@dataclass(frozen=True)
class Row:
    method: str
    rule: str
    expect: dict[str, Expect | PerObject]
    build: Build
    objects: tuple[str, ...] = ("-",)
    writes: bool = False  # an allowed call must write (proof that the refused ones sent a valid request)
    fresh: bool = False  # run on a second, freshly signed-in client of the caller (login, logout)
    after: Callable[[Ctx, Any], None] | None = None  # put the caller back as it was (new token, new login)

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.rule


def postback_form(ctx: Ctx, **extra: Any) -> dict[str, Any]:
    me = ctx.me
    return {
        "name": f"{me.markers['postback name']} {ctx.unique('v')}",
        "url": f"{ctx.network.receiver_url}/{me.markers['postback url']}?cid=#fobs#",
        "method": "GET",
        "scope": "all",
        "events": ["sale", "lead"],
        "statuses": ["pending", "approved"],
        **extra,
    }


def sale_report(ctx: Ctx) -> dict[str, str]:
    return {"click_id": ctx.party.click_id, "order_number": ctx.unique("order"), "sale_amount": "25.00"}


def s2s_query(ctx: Ctx) -> dict[str, str]:
    query = {"clickid": ctx.party.click_id, "on": ctx.unique("order"), "sa": "25.00"}
    credential = ctx.caller.s2s_token or ctx.caller.token  # a publisher or staff token: a curious user
    return {**query, "token": credential} if credential else query


def bulk_form(ctx: Ctx) -> dict[str, str]:
    since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    form = {"since": since, "postback_id": str(ctx.party.postback_id)}
    criteria = bulk.parse_filter(form)
    with get_db(ctx.app).session() as session:
        form["confirmed_count"] = str(bulk.count(session, criteria))
    return form


TOKEN = re.compile(r"\b(pub|stf)_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def take_new_token(ctx: Ctx, response: Any) -> None:
    """The page shows the new token once; scripts of this caller use it from now on."""
    if response.status_code == 200:
        found = TOKEN.search(response.get_data(as_text=True))
        assert found, f"{ctx.caller.role}: the new token is not on the page"
        ctx.caller.token = found.group(0)


ADVERTISER_SECRET = re.compile(r'id="new-(api_key|s2s_token)">([^<]+)<')


def take_new_advertiser_secret(ctx: Ctx, response: Any) -> None:
    """The page shows the new key or token once; the advertiser's scripts use it from now on."""
    if response.status_code == 200 and ctx.caller.role == "advertiser":
        found = ADVERTISER_SECRET.search(response.get_data(as_text=True))
        assert found, "the new secret is not on the page"
        if found.group(1) == "api_key":
            ctx.caller.token = found.group(2)
        else:
            ctx.caller.s2s_token = found.group(2)


def reissue_token(ctx: Ctx, response: Any) -> None:
    """After a revoke: a new token, as the caller would make on its account page."""
    if response.status_code == 302 and ctx.caller.role.startswith("publisher_"):
        ctx.caller.token = net.new_publisher_token(
            ctx.app, ctx.network.party(ctx.caller.owner or "A").publisher_id
        )
    elif response.status_code == 302 and ctx.caller.role in ("support", "admin"):
        ctx.caller.token = net.new_staff_token(ctx.app, ctx.network.staff[ctx.caller.role].id)


def sign_in_again(ctx: Ctx, response: Any) -> None:
    """Logging out ends every session of the account, the caller's main browser included."""
    sign_in(ctx.main)


A_B = ("A", "B")
SINCE = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")

ROWS: list[Row] = [
    # --- public ------------------------------------------------------------------------------------------
    Row("GET", "/", everyone(200), lambda c: Req("/")),
    Row("GET", "/livez", everyone(200), lambda c: Req("/livez")),
    Row("GET", "/readyz", everyone(200), lambda c: Req("/readyz")),
    Row("GET", "/healthz", everyone(200), lambda c: Req("/healthz")),
    Row("GET", "/favicon.ico", everyone(200), lambda c: Req("/favicon.ico")),
    # The API's documentation is public.
    Row("GET", "/api/openapi.json", everyone(200), lambda c: Req("/api/openapi.json")),
    Row("GET", "/api/docs", everyone(200), lambda c: Req("/api/docs")),
    # Every caller here is a remote client: metrics are served to this host (or with METRICS_TOKEN) only.
    Row("GET", "/metrics", everyone(403), lambda c: Req("/metrics")),
    Row(
        "GET",
        "/c/<int:program_id>",
        {**everyone({"A": to("https://shoes.example/"), "B": to("https://hats.example/")})},
        lambda c: Req(
            f"/c/{c.party.program_id}",
            {"pub": str(c.party.publisher_id), "ts": str(c.party.source_id), "fobs": "from-the-link"},
        ),
        A_B,
        writes=True,
    ),
    # --- advertiser API and S2S: the advertiser's own program (A's click) yes, another's (B's) no ----------
    Row(
        "POST",
        "/api/v1/transactions",
        advertiser_api(201, 400),
        lambda c: Req("/api/v1/transactions", json=sale_report(c)),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/api/v1/transactions/batch",
        # Another advertiser's click is a rejected line of a 200 answer: nothing is written.
        advertiser_api(200, Want(200, changes=False)),
        lambda c: Req(
            "/api/v1/transactions/batch",
            data="click_id,order_number,sale_amount\n{click_id},{order_number},{sale_amount}\n".format(
                **sale_report(c)
            ),
            content_type="text/csv",
        ),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/api/v1/transactions/<sales_id>/status",
        advertiser_api(200, 404),
        lambda c: Req(f"/api/v1/transactions/{c.party.sales_id}/status", json={"status": "approved"}),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/api/v1/transactions/status",
        # By order number: another advertiser's order answers like a missing one. An adjustment, which any
        # pending or approved sale takes, so the order of the rows does not matter.
        advertiser_api(200, 404),
        lambda c: Req(
            "/api/v1/transactions/status",
            json={"order_number": c.party.markers["order number"], "sale_amount": "110.00"},
        ),
        A_B,
        writes=True,
    ),
    Row(
        "GET",
        "/api/v1/transactions",
        # Filtered by an order number: another advertiser's answers an empty page (nothing of it leaks).
        advertiser_api(200, 200),
        lambda c: Req("/api/v1/transactions", {"order_number": c.party.markers["order number"]}),
        A_B,
    ),
    Row(
        "GET",
        "/api/v1/transactions/<sales_id>",
        advertiser_api(200, 404),
        lambda c: Req(f"/api/v1/transactions/{c.party.sales_id}"),
        A_B,
    ),
    *[
        Row(
            method,
            "/s2s/transaction",
            advertiser_api(201, 400),
            lambda c, method=method: (
                Req("/s2s/transaction", s2s_query(c))
                if method == "GET"
                else Req("/s2s/transaction", form=s2s_query(c))
            ),
            A_B,
            writes=True,
        )
        for method in ("GET", "POST")
    ],
    # --- publisher API -----------------------------------------------------------------------------------
    Row("GET", "/api/v1/postbacks", publisher_api(200), lambda c: Req("/api/v1/postbacks")),
    Row(
        "POST",
        "/api/v1/postbacks",
        # The object is the traffic source the new postback is scoped to: another publisher's is refused.
        publisher_api(201, 400),
        lambda c: Req(
            "/api/v1/postbacks",
            json={
                "url": f"{c.network.receiver_url}/{c.me.markers['postback url']}/new?cid=#fobs#",
                "traffic_source_ids": [c.party.source_id],
            },
        ),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/api/v1/postbacks/preview",
        publisher_api(200),
        lambda c: Req("/api/v1/postbacks/preview", json={"url": "https://tracker.example/pb?cid=#fobs#"}),
    ),
    Row(
        "GET",
        "/api/v1/postbacks/<int:postback_id>",
        publisher_api(200),
        lambda c: Req(f"/api/v1/postbacks/{c.party.postback_id}"),
        A_B,
    ),
    Row(
        "PUT",
        "/api/v1/postbacks/<int:postback_id>",
        {**everyone(401), **scoped(200, 400)},
        lambda c: Req(
            f"/api/v1/postbacks/{c.party.postback_id}",
            json={
                "name": f"{c.party.markers['postback name']} {c.unique('v')}",
                "traffic_source_ids": [c.source_id],
            },
        ),
        SCOPES,
        writes=True,
    ),
    Row(
        "DELETE",
        "/api/v1/postbacks/<int:postback_id>",
        publisher_api(204),
        lambda c: Req(f"/api/v1/postbacks/{c.spare_postback()}"),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/api/v1/postbacks/<int:postback_id>/test",
        publisher_api(200),
        lambda c: Req(f"/api/v1/postbacks/{c.party.postback_id}/test"),
        A_B,
    ),
    Row(
        "GET",
        "/api/v1/deliveries",
        # Filtered by a postback id: another publisher's answers an empty list (nothing of it leaks).
        {**publisher_api(200, 200), "support": 200, "admin": 200},
        lambda c: Req("/api/v1/deliveries", {"postback_id": str(c.party.postback_id)}),
        A_B,
    ),
    Row(
        "GET",
        "/api/v1/deliveries/<int:delivery_id>",
        {**publisher_api(200), "support": 200, "admin": 200},
        lambda c: Req(f"/api/v1/deliveries/{c.party.delivery_id}"),
        A_B,
    ),
    Row(
        "GET",
        "/api/v1/programs",
        # With a traffic source id: one's own builds links, another's is refused naming the field.
        publisher_api(200, 400),
        lambda c: Req("/api/v1/programs", {"traffic_source_id": str(c.party.source_id)}),
        A_B,
    ),
    Row(
        "GET",
        "/api/v1/conversions",
        # Filtered by a traffic source id: another publisher's answers an empty list (nothing of it leaks).
        publisher_api(200, 200),
        lambda c: Req("/api/v1/conversions", {"traffic_source_id": str(c.party.source_id)}),
        A_B,
    ),
    Row(
        "POST",
        "/api/v1/deliveries/<int:delivery_id>/replay",
        {**publisher_api(200), "support": 200, "admin": 200},
        lambda c: Req(f"/api/v1/deliveries/{c.spare_delivery()}/replay"),
        A_B,
        writes=True,
    ),
    # --- publisher portal --------------------------------------------------------------------------------
    Row("GET", "/portal/", portal(200), lambda c: Req("/portal/")),
    Row(
        "GET",
        "/portal/login",
        {**everyone(200), **owners(to("/portal/postbacks"), to("/portal/postbacks"))},
        lambda c: Req("/portal/login"),
    ),
    Row(
        "POST",
        "/portal/login",
        # Each signs in with its own login (publishers' and staff's), or guesses A's without a password.
        {**everyone(401), "publisher_a": to("/portal/postbacks"), "publisher_b": to("/portal/postbacks")},
        lambda c: Req(
            "/portal/login",
            form={
                "email": c.caller.email or c.network.party("A").email,
                "password": net.PASSWORD if c.caller.email else "a-guess-of-a-password",
            },
        ),
        fresh=True,
    ),
    Row(
        "POST",
        "/portal/logout",
        # Signing out ends every session of the account (a write); with no session there is nothing to end.
        {
            **everyone(Want(302, "/portal/login", changes=True)),
            "anonymous": PORTAL_LOGIN,
        },
        lambda c: Req("/portal/logout", form={}),
        fresh=True,
        after=sign_in_again,
    ),
    Row("GET", "/portal/postbacks", portal(200), lambda c: Req("/portal/postbacks")),
    Row(
        "POST",
        "/portal/postbacks",
        portal(to("/portal/postbacks/"), 400),
        lambda c: Req(
            "/portal/postbacks",
            form=postback_form(c, scope="some", traffic_source_ids=[str(c.party.source_id)]),
        ),
        A_B,
        writes=True,
    ),
    Row("GET", "/portal/postbacks/new", portal(200), lambda c: Req("/portal/postbacks/new")),
    Row(
        "POST",
        "/portal/postbacks/preview",
        portal(200),
        lambda c: Req("/portal/postbacks/preview", form={"url": "https://tracker.example/pb?cid=#fobs#"}),
    ),
    Row(
        "GET",
        "/portal/postbacks/<int:postback_id>",
        portal(200),
        lambda c: Req(f"/portal/postbacks/{c.party.postback_id}"),
        A_B,
    ),
    Row(
        "POST",
        "/portal/postbacks/<int:postback_id>",
        {**everyone(PORTAL_LOGIN), **scoped(to("/portal/postbacks/"), 400)},
        lambda c: Req(
            f"/portal/postbacks/{c.party.postback_id}",
            form=postback_form(c, scope="some", traffic_source_ids=[str(c.source_id)]),
        ),
        SCOPES,
        writes=True,
    ),
    Row(
        "POST",
        "/portal/postbacks/<int:postback_id>/pause",
        portal(to("/portal/postbacks/")),
        lambda c: Req(f"/portal/postbacks/{c.spare_postback()}/pause", form={}),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/portal/postbacks/<int:postback_id>/resume",
        portal(to("/portal/postbacks/")),
        lambda c: Req(f"/portal/postbacks/{c.spare_postback(active=False)}/resume", form={}),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/portal/postbacks/<int:postback_id>/delete",
        portal(to("/portal/postbacks")),
        lambda c: Req(f"/portal/postbacks/{c.spare_postback()}/delete", form={}),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/portal/postbacks/<int:postback_id>/secret",
        portal(to("/portal/postbacks/")),
        lambda c: Req(f"/portal/postbacks/{c.spare_postback()}/secret", form={"action": "new"}),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/portal/postbacks/<int:postback_id>/test",
        portal(200),
        lambda c: Req(f"/portal/postbacks/{c.party.postback_id}/test", form={}),
        A_B,
    ),
    Row(
        "POST",
        "/portal/postbacks/<int:postback_id>/backfill",
        # Queued as a job (this module's own Redis database): the database is written by the worker, later.
        portal(to("/portal/postbacks/")),
        lambda c: Req(f"/portal/postbacks/{c.party.postback_id}/backfill", form={"since": SINCE}),
        A_B,
    ),
    Row(
        "GET",
        "/portal/postbacks/<int:postback_id>/backfill",
        portal(200),
        lambda c: Req(f"/portal/postbacks/{c.party.postback_id}/backfill"),
        A_B,
    ),
    Row(
        "GET",
        "/portal/deliveries",
        portal(200, 200),
        lambda c: Req("/portal/deliveries", {"postback_id": str(c.party.postback_id)}),
        A_B,
    ),
    Row(
        "GET",
        "/portal/links",
        portal(200, 400),
        lambda c: Req("/portal/links", {"traffic_source_id": str(c.party.source_id)}),
        A_B,
    ),
    Row(
        "GET",
        "/portal/conversions",
        portal(200, 200),
        lambda c: Req("/portal/conversions", {"traffic_source_id": str(c.party.source_id)}),
        A_B,
    ),
    Row(
        "GET",
        "/portal/conversions/export",
        portal(200, 200),
        lambda c: Req(
            "/portal/conversions/export", {"format": "csv", "traffic_source_id": str(c.party.source_id)}
        ),
        A_B,
    ),
    Row(
        "GET",
        "/portal/deliveries/<int:delivery_id>",
        portal(200),
        lambda c: Req(f"/portal/deliveries/{c.party.delivery_id}"),
        A_B,
    ),
    Row(
        "POST",
        "/portal/deliveries/<int:delivery_id>/replay",
        portal(to("/portal/deliveries/")),
        lambda c: Req(f"/portal/deliveries/{c.spare_delivery()}/replay", form={}),
        A_B,
        writes=True,
    ),
    Row("GET", "/portal/sources", portal(200), lambda c: Req("/portal/sources")),
    Row(
        "POST",
        "/portal/sources",
        portal(to("/portal/sources")),
        lambda c: Req("/portal/sources", form={"name": c.unique("another-site")}),
        writes=True,
    ),
    Row(
        "POST",
        "/portal/sources/<int:source_id>",
        portal(to("/portal/sources")),
        lambda c: Req(
            f"/portal/sources/{c.party.source_id}",
            form={"name": f"{c.party.markers['source name']} {c.unique('v')}"},
        ),
        A_B,
        writes=True,
    ),
    Row("GET", "/portal/account", portal(200), lambda c: Req("/portal/account")),
    Row(
        "POST",
        "/portal/account/time-zone",
        portal(to("/portal/account")),
        # UTC: the account keeps showing times as every other row of the matrix expects.
        lambda c: Req("/portal/account/time-zone", form={"time_zone": "UTC"}),
    ),
    Row(
        "POST",
        "/portal/account/token",
        portal(200),
        lambda c: Req("/portal/account/token", form={}),
        writes=True,
        after=take_new_token,
    ),
    Row(
        "POST",
        "/portal/account/token/revoke",
        portal(to("/portal/account")),
        lambda c: Req("/portal/account/token/revoke", form={}),
        writes=True,
        after=reissue_token,
    ),
    # --- support console ---------------------------------------------------------------------------------
    Row("GET", "/support/", support(200), lambda c: Req("/support/")),
    Row(
        "GET",
        "/support/login",
        {**everyone(200), "support": to("/support"), "admin": to("/support")},
        lambda c: Req("/support/login"),
    ),
    Row(
        "POST",
        "/support/login",
        {**everyone(401), "support": to("/support"), "admin": to("/support")},
        lambda c: Req(
            "/support/login",
            form={
                "email": c.caller.email or c.network.staff["support"].email,
                "password": net.PASSWORD if c.caller.email else "a-guess-of-a-password",
            },
        ),
        fresh=True,
    ),
    Row(
        "POST",
        "/support/logout",
        {
            **everyone(Want(302, "/support/login", changes=True)),
            "anonymous": SUPPORT_LOGIN,
        },
        lambda c: Req("/support/logout", form={}),
        fresh=True,
        after=sign_in_again,
    ),
    Row("GET", "/support/account", support(200), lambda c: Req("/support/account")),
    Row(
        "POST",
        "/support/account/time-zone",
        support(to("/support/account")),
        # UTC: the account keeps showing times as every other row of the matrix expects.
        lambda c: Req("/support/account/time-zone", form={"time_zone": "UTC"}),
    ),
    Row(
        "POST",
        "/support/account/token",
        support(200),
        lambda c: Req("/support/account/token", form={}),
        writes=True,
        after=take_new_token,
    ),
    Row(
        "POST",
        "/support/account/token/revoke",
        support(to("/support/account")),
        lambda c: Req("/support/account/token/revoke", form={}),
        writes=True,
        after=reissue_token,
    ),
    Row("GET", "/support/audit", support(200), lambda c: Req("/support/audit")),
    Row("GET", "/support/deliveries", support(200), lambda c: Req("/support/deliveries")),
    Row(
        "GET",
        "/support/deliveries/<int:delivery_id>",
        support(to("/support/transactions/")),
        lambda c: Req(f"/support/deliveries/{c.party.delivery_id}"),
        A_B,
    ),
    Row(
        "POST",
        "/support/deliveries/<int:delivery_id>/replay",
        support(to("/support/transactions/")),
        lambda c: Req(f"/support/deliveries/{c.spare_delivery()}/replay", form={}),
        A_B,
        writes=True,
    ),
    Row(
        "GET",
        "/support/postbacks/<int:postback_id>",
        support(200),
        lambda c: Req(f"/support/postbacks/{c.party.postback_id}"),
        A_B,
    ),
    Row(
        "POST",
        "/support/postbacks/<int:postback_id>/pause",
        support(to("/support/postbacks/")),
        lambda c: Req(f"/support/postbacks/{c.spare_postback()}/pause", form={"reason": "receiver down"}),
        A_B,
        writes=True,
    ),
    Row(
        "POST",
        "/support/postbacks/<int:postback_id>/resume",
        support(to("/support/postbacks/")),
        lambda c: Req(
            f"/support/postbacks/{c.spare_postback(active=False)}/resume", form={"reason": "fixed"}
        ),
        A_B,
        writes=True,
    ),
    Row(
        "GET",
        "/support/sales/<sales_id>",
        support(to("/support/transactions/")),
        lambda c: Req(f"/support/sales/{c.party.sales_id}"),
        A_B,
    ),
    Row(
        "GET",
        "/support/transactions/<int:transaction_id>",
        support(200),
        lambda c: Req(f"/support/transactions/{c.party.transaction_id}"),
        A_B,
    ),
    Row("GET", "/support/replays/new", admin_only(200), lambda c: Req("/support/replays/new")),
    Row(
        "POST",
        "/support/replays",
        admin_only(to("/support/replays/")),
        lambda c: Req("/support/replays", form=bulk_form(c)),
        A_B,
        writes=True,
    ),
    Row(
        "GET",
        "/support/replays/<int:entry_id>",
        # Only a bulk replay's entry has a status page: any other audit entry's id is a 404.
        {**everyone(SUPPORT_LOGIN), "support": 403, "admin": {"bulk": 200, "other": 404}},
        lambda c: Req(
            f"/support/replays/{c.network.bulk_entry_id if c.obj == 'bulk' else c.network.pause_entry_id}"
        ),
        ("bulk", "other"),
    ),
    # --- support console: network administration (admin role; changes on spare accounts) -----------------
    *[
        Row(
            "GET",
            f"/support/admin/{kind}{page}",
            admin_only(200),
            lambda c, p=f"/support/admin/{kind}{page}": Req(p),
        )
        for kind in ("publishers", "advertisers", "programs", "staff")
        for page in ("", "/new")
    ],
    Row(
        "POST",
        "/support/admin/publishers",
        # The new publisher's API token is shown once, on the answer itself.
        admin_only(200),
        lambda c: Req(
            "/support/admin/publishers",
            form={"name": c.unique("new"), "email": f"{c.unique('new')}@pub.test", "password": net.PASSWORD},
        ),
        writes=True,
    ),
    Row(
        "GET",
        "/support/admin/publishers/<int:publisher_id>",
        admin_only(200),
        lambda c: Req(f"/support/admin/publishers/{c.party.publisher_id}"),
        A_B,
    ),
    Row(
        "POST",
        "/support/admin/publishers/<int:publisher_id>",
        admin_only(to("/support/admin/publishers/")),
        lambda c: Req(
            f"/support/admin/publishers/{c.spare_publisher()[0]}",
            form={"name": c.unique("renamed"), "email": f"{c.unique('moved')}@pub.test"},
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/publishers/<int:publisher_id>/active",
        admin_only(to("/support/admin/publishers/")),
        lambda c: Req(f"/support/admin/publishers/{c.spare_publisher()[0]}/active", form={"active": "0"}),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/publishers/<int:publisher_id>/password",
        admin_only(to("/support/admin/publishers/")),
        lambda c: Req(
            f"/support/admin/publishers/{c.spare_publisher()[0]}/password",
            form={"password": "a-new-password"},
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/publishers/<int:publisher_id>/token",
        admin_only(200),
        lambda c: Req(f"/support/admin/publishers/{c.spare_publisher()[0]}/token", form={}),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/publishers/<int:publisher_id>/sources",
        admin_only(to("/support/admin/publishers/")),
        lambda c: Req(
            f"/support/admin/publishers/{c.spare_publisher()[0]}/sources", form={"name": "Newsletter"}
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/publishers/<int:publisher_id>/sources/<int:source_id>",
        admin_only(to("/support/admin/publishers/")),
        lambda c: Req(
            "/support/admin/publishers/{}/sources/{}".format(*c.spare_publisher()),
            form={"name": "Renamed site"},
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/publishers/<int:publisher_id>/sources/<int:source_id>/active",
        admin_only(to("/support/admin/publishers/")),
        lambda c: Req(
            "/support/admin/publishers/{}/sources/{}/active".format(*c.spare_publisher()),
            form={"active": "0"},
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/advertisers",
        admin_only(200),  # its key and S2S token are shown once, on the answer itself
        lambda c: Req("/support/admin/advertisers", form={"name": c.unique("shop")}),
        writes=True,
    ),
    Row(
        "GET",
        "/support/admin/advertisers/<int:advertiser_id>",
        admin_only(200),
        lambda c: Req(f"/support/admin/advertisers/{c.network.advertiser_id}"),
    ),
    Row(
        "POST",
        "/support/admin/advertisers/<int:advertiser_id>",
        admin_only(to("/support/admin/advertisers/")),
        lambda c: Req(
            f"/support/admin/advertisers/{net.spare_advertiser(c.app)}", form={"name": c.unique("r")}
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/advertisers/<int:advertiser_id>/active",
        admin_only(to("/support/admin/advertisers/")),
        lambda c: Req(
            f"/support/admin/advertisers/{net.spare_advertiser(c.app)}/active", form={"active": "0"}
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/advertisers/<int:advertiser_id>/rotate",
        admin_only(200),
        lambda c: Req(
            f"/support/admin/advertisers/{net.spare_advertiser(c.app)}/rotate",
            form={"secret": "api_key", "grace": "24h"},
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/programs",
        admin_only(to("/support/admin/programs/")),
        lambda c: Req(
            "/support/admin/programs",
            form={
                "advertiser_id": str(c.network.advertiser_id),
                "name": c.unique("program"),
                "landing_url": "https://shoes.example/new",
                "commission": "3.50",
                "currency": "USD",
            },
        ),
        writes=True,
    ),
    Row(
        "GET",
        "/support/admin/programs/<int:program_id>",
        admin_only(200),
        lambda c: Req(f"/support/admin/programs/{c.party.program_id}"),
        A_B,
    ),
    Row(
        "POST",
        "/support/admin/programs/<int:program_id>",
        admin_only(to("/support/admin/programs/")),
        lambda c: Req(
            f"/support/admin/programs/{net.spare_program(c.app, c.network)}",
            form={
                "name": c.unique("terms"),
                "landing_url": "https://spare.example/",
                "commission": "7%",
                "currency": "USD",
            },
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/programs/<int:program_id>/active",
        admin_only(to("/support/admin/programs/")),
        lambda c: Req(
            f"/support/admin/programs/{net.spare_program(c.app, c.network)}/active", form={"active": "0"}
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/staff",
        admin_only(to("/support/admin/staff/")),
        lambda c: Req(
            "/support/admin/staff",
            form={"email": f"{c.unique('staff')}@staff.test", "role": "support", "password": net.PASSWORD},
        ),
        writes=True,
    ),
    Row(
        "GET",
        "/support/admin/staff/<int:member_id>",
        admin_only(200),
        lambda c: Req(f"/support/admin/staff/{c.network.staff['support'].id}"),
    ),
    Row(
        "POST",
        "/support/admin/staff/<int:member_id>/active",
        admin_only(to("/support/admin/staff/")),
        lambda c: Req(
            f"/support/admin/staff/{net.spare_staff(c.app, c.network)}/active", form={"active": "0"}
        ),
        writes=True,
    ),
    Row(
        "POST",
        "/support/admin/staff/<int:member_id>/password",
        admin_only(to("/support/admin/staff/")),
        lambda c: Req(
            f"/support/admin/staff/{net.spare_staff(c.app, c.network)}/password",
            form={"password": "a-new-password"},
        ),
        writes=True,
    ),
    # --- advertiser portal: X's portal user; A's sale is in X's program, B's in Y's -----------------------
    Row("GET", "/advertiser/", advertiser_portal(200), lambda c: Req("/advertiser/")),
    Row("GET", "/advertiser/transactions", advertiser_portal(200), lambda c: Req("/advertiser/transactions")),
    Row(
        "GET",
        "/advertiser/login",
        {**everyone(200), "advertiser": to("/advertiser/transactions")},
        lambda c: Req("/advertiser/login"),
    ),
    Row(
        "POST",
        "/advertiser/login",
        # Each tries its own login (only the advertiser's user has one here), or guesses the advertiser's.
        {**everyone(401), "advertiser": to("/advertiser/transactions")},
        lambda c: Req(
            "/advertiser/login",
            form={
                "email": c.caller.email or c.network.advertiser_user_email,
                "password": net.PASSWORD if c.caller.email else "a-guess-of-a-password",
            },
        ),
        fresh=True,
    ),
    Row(
        "POST",
        "/advertiser/logout",
        # As the other consoles' logouts: whoever is signed in has every session of the account ended.
        {**everyone(Want(302, "/advertiser/login", changes=True)), "anonymous": ADVERTISER_LOGIN},
        lambda c: Req("/advertiser/logout", form={}),
        fresh=True,
        after=sign_in_again,
    ),
    Row(
        "GET",
        "/advertiser/transactions/<sales_id>",
        advertiser_portal({"A": 200, "B": 404}),
        lambda c: Req(f"/advertiser/transactions/{c.party.sales_id}"),
        A_B,
    ),
    Row(
        "POST",
        "/advertiser/transactions/<sales_id>/status",
        # An adjustment, which a pending or approved sale takes whatever the rows before did to it.
        advertiser_portal({"A": to("/advertiser/transactions/"), "B": 404}),
        lambda c: Req(f"/advertiser/transactions/{c.party.sales_id}/status", form={"sale_amount": "115.00"}),
        A_B,
        writes=True,
    ),
    Row(
        "GET",
        "/advertiser/bulk",
        # Another advertiser's order number matches nothing of this one's: a count of 0.
        advertiser_portal(200),
        lambda c: Req(
            "/advertiser/bulk", {"action": "approved", "order_number": c.party.markers["order number"]}
        ),
        A_B,
    ),
    Row(
        "POST",
        "/advertiser/bulk",
        # Confirming one of another advertiser's orders: none of its own matches, so the count has "changed"
        # (409, saying so) and nothing starts.
        advertiser_portal({"A": to("/advertiser/bulk/"), "B": 409}),
        lambda c: Req(
            "/advertiser/bulk",
            form={
                "action": "approved",
                "order_number": c.party.markers["order number"],
                "confirmed_count": "1",
            },
        ),
        A_B,
        writes=True,
    ),
    Row(
        "GET",
        "/advertiser/bulk/<int:entry_id>",
        advertiser_portal({"own": 200, "other": 404}),
        lambda c: Req(f"/advertiser/bulk/{c.network.advertiser_bulk_ids[c.obj]}"),
        ("own", "other"),
    ),
    Row("GET", "/advertiser/upload", advertiser_portal(200), lambda c: Req("/advertiser/upload")),
    Row(
        "POST",
        "/advertiser/upload",
        # Another advertiser's click is a rejected line of a 200 page: nothing is written.
        advertiser_portal({"A": 200, "B": Want(200, changes=False)}),
        lambda c: Req(
            "/advertiser/upload",
            form={
                "file": Upload(
                    "click_id,order_number,sale_amount\n{click_id},{order_number},{sale_amount}\n".format(
                        **sale_report(c)
                    ),
                    "sales.csv",
                )
            },
        ),
        A_B,
        writes=True,
    ),
    Row(
        "GET",
        "/advertiser/uploads/<upload_id>.csv",
        advertiser_portal({"own": 200, "other": 404}),
        lambda c: Req(f"/advertiser/uploads/{c.network.upload_ids[c.obj]}.csv"),
        ("own", "other"),
    ),
    Row("GET", "/advertiser/integration", advertiser_portal(200), lambda c: Req("/advertiser/integration")),
    Row("GET", "/advertiser/account", advertiser_portal(200), lambda c: Req("/advertiser/account")),
    Row(
        "POST",
        "/advertiser/account/time-zone",
        # UTC: the account keeps showing times as every other row of the matrix expects.
        advertiser_portal(to("/advertiser/account")),
        lambda c: Req("/advertiser/account/time-zone", form={"time_zone": "UTC"}),
    ),
    Row(
        "POST",
        "/advertiser/integration/rotate",
        advertiser_portal(200),
        lambda c: Req("/advertiser/integration/rotate", form={"secret": c.obj, "grace": "1h"}),
        ("api_key", "s2s_token"),
        writes=True,
        after=take_new_advertiser_secret,
    ),
]


# ---------------------------------------------------------------------------------------------------------
# Leaks
# ---------------------------------------------------------------------------------------------------------

# What the advertiser may see of A's sale: it is a sale in its own program.
ADVERTISER_MAY_SEE = {"sales id", "order number", "click id", "transaction id"}


def forbidden(network: net.Network, callers: dict[str, Caller], role: str) -> dict[str, str]:
    """value -> what it is, for everything `role` must never be shown."""
    found = {value: "a password or token hash" for value in network.hashes}
    found[network.api_key] = found[network.s2s_token] = "the advertiser's credentials"
    found[network.other_api_key] = found[network.other_s2s_token] = "another advertiser's credentials"
    for other in callers.values():
        if other.role != role and other.token and other.role != "advertiser":
            found[other.token] = f"{other.role}'s API token"
    staff = role in ("support", "admin")
    for owner in net.OWNERS:
        party = network.party(owner)
        mine = role == f"publisher_{owner.lower()}"
        for kind, value in party.markers.items():
            if mine or (staff and kind != "signing secret"):
                continue
            if role == "advertiser" and owner == "A" and kind in ADVERTISER_MAY_SEE:
                continue
            found[value] = f"{owner}'s {kind}"
    if not staff:
        for member in network.staff.values():
            found[member.email] = f"{member.role}'s email"
    return found


# ---------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Matrix:
    app: Flask
    network: net.Network
    callers: dict[str, Caller]
    backend: str
    cases: int = 0
    seen: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def matrix_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per backend for the whole module: the network is built once, not per case."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('authz') / 'matrix.db'}"
        return
    with postgres_schema("authz") as url:
        yield url


@pytest.fixture(scope="module")
def matrix(matrix_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    own_redis = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    tmp: Path = tmp_path_factory.mktemp("authz-app")
    app = create_app(app_settings(tmp, matrix_url, own_redis))
    Base.metadata.create_all(get_db(app).engine)
    receiver = Receiver()
    network = net.build(app, receiver.url)
    callers = make_callers(app, network)
    backend = "postgres" if matrix_url.startswith("postgresql") else "sqlite"
    found = Matrix(app, network, callers, backend)
    yield found
    receiver.close()
    _forget_keys(own_redis)
    get_db(app).dispose()


def _forget_keys(url: str) -> None:
    """The jobs this module queued (its own database of the suite's private Redis), key by key."""
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(count=500):
        client.delete(key)
    client.close()


def _route_keys(app: Flask) -> set[tuple[str, str]]:
    keys = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXCLUDED_ENDPOINTS:
            continue
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                keys.add((method, rule.rule))
    return keys


def test_every_route_has_a_row_and_every_row_a_route(matrix: Matrix) -> None:
    routes = _route_keys(matrix.app)
    rows = [row.key for row in ROWS]
    assert len(rows) == len(set(rows)), f"rows twice: {sorted(k for k in rows if rows.count(k) > 1)}"
    missing = sorted(routes - set(rows))
    stale = sorted(set(rows) - routes)
    assert not missing, f"routes without a row in the authorization matrix: {missing}"
    assert not stale, f"rows whose route no longer exists: {stale}"
    for row in ROWS:
        assert set(row.expect) == set(ROLES), f"{row.key}: a role is missing from the row"


def test_authorization_matrix(matrix: Matrix) -> None:
    failures: list[str] = []
    for row in ROWS:
        for role in ROLES:
            for obj in row.objects:
                failures += _run_case(matrix, row, role, obj)
    markers = _all_markers(matrix.network)
    print(
        f"\nauthz matrix [{matrix.backend}]: {len(ROWS)} routes (method x rule), {len(ROLES)} roles, "
        f"{matrix.cases} cases (route x role x object), {len(failures)} failures; "
        f"{len(markers)} private values watched, seen {sum(matrix.seen.values())} times where allowed"
    )
    assert not failures, "\n".join(failures)
    # The leak check has teeth only if each value it looks for really shows up where it is allowed.
    unseen = sorted(f"{what} ({value})" for value, what in markers.items() if not matrix.seen[value])
    assert not unseen, f"never shown even to its owner or staff, so never really looked for: {unseen}"


def _all_markers(network: net.Network) -> dict[str, str]:
    return {
        value: f"{owner}'s {kind}"
        for owner in net.OWNERS
        for kind, value in network.party(owner).markers.items()
    }


def _expected(row: Row, role: str, obj: str) -> Want:
    want = row.expect[role]
    if isinstance(want, dict):  # per object; a route without one is about the caller's own things
        want = want[obj if obj != "-" else role[-1].upper()]
    return want if isinstance(want, Want) else Want(want)


def _must_change(row: Row, want: Want) -> bool:
    if want.changes is not None:
        return want.changes
    refused = want.status >= 400 or (want.status == 302 and (want.to or "").startswith(LOGIN_PATHS))
    return row.writes and not refused


def _run_case(matrix: Matrix, row: Row, role: str, obj: str) -> list[str]:
    main = matrix.callers[role]
    caller = fresh_caller(matrix.app, main) if row.fresh else main
    ctx = Ctx(matrix.app, matrix.network, caller, obj, main)
    want = _expected(row, role, obj)
    label = f"{row.method} {row.rule} as {role}"
    if obj in net.OWNERS:
        label += f" on {obj}'s object"
    elif "+" in obj:
        label += f" on {obj[0]}'s object with {obj.split('+')[1]}"
    elif obj != "-":
        label += f" on the {obj} object"
    secret = forbidden(matrix.network, matrix.callers, role)
    request = row.build(ctx)
    engine = get_db(matrix.app).engine
    before = snapshot(engine) if row.method != "GET" else None
    response = _send(caller, row.method, request)
    body = response.get_data(as_text=True)  # read first: a streamed answer (CSV upload) works as it is read
    matrix.cases += 1
    problems = []
    location = response.location if response.status_code in (301, 302, 303) else None
    if location is not None and not (want.to or "").startswith("http"):
        location = urlsplit(location).path
    got = f"{response.status_code}" + (f" -> {response.location}" if location is not None else "")
    if response.status_code != want.status or (want.to and not (location or "").startswith(want.to)):
        problems.append(f"{label}: expected {want}, got {got}: {body[:200]!r}")
    if before is not None:
        changed = changed_tables(before, snapshot(engine))
        if _must_change(row, want) and not changed:
            problems.append(f"{label}: allowed ({got}) but wrote nothing: was the request valid?")
        elif not _must_change(row, want) and changed:
            problems.append(f"{label}: refused or read-only ({got}) but wrote to {changed}")
    body += "\n" + (response.headers.get("Location") or "")
    echoed = request.echo()
    for value, what in secret.items():
        if value and value in body and value not in echoed:
            problems.append(f"{label}: the response shows {what} ({value!r})")
    for value in _all_markers(matrix.network):
        if value in body and value not in echoed and value not in secret:
            matrix.seen[value] += 1
    if row.after is not None:
        row.after(ctx, response)
    return problems


def _send(caller: Caller, method: str, request: Req) -> Any:
    headers = {}
    if request.path.startswith("/api/") and caller.token:
        headers["Authorization"] = f"Bearer {caller.token}"
    form = request.form
    if form is not None and request.path.startswith(("/portal", "/support", "/advertiser")):
        form = {**form, "csrf_token": caller.csrf}
    if form is not None:
        form = {key: value.part() if isinstance(value, Upload) else value for key, value in form.items()}
    return caller.client.open(
        request.path,
        method=method,
        query_string=request.query or None,
        data=form if form is not None else request.data,
        json=request.json,
        content_type=request.content_type,
        headers=headers,
    )
