"""Advertiser users from the command line (create, list, reset password, deactivate) and the demo's login."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from dispatcher import accounts, demo
from dispatcher.db import get_db
from dispatcher.models import AdvertiserUser
from tests.advertiser.conftest import advertiser_log_in, csrf_of


def _cli(app: Flask, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = app.test_cli_runner().invoke(args=list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _ok(app: Flask, *args: str, stdin: str | None = None) -> dict[str, Any]:
    code, out, err = _cli(app, *args, stdin=stdin)
    assert code == 0, err
    [line] = out.strip().splitlines()
    payload: dict[str, Any] = json.loads(line)
    return payload


def _advertiser(app: Flask) -> int:
    with get_db(app).session() as session:
        created = accounts.create_advertiser(session, "Acme Shop")
        session.commit()
        return created.advertiser.id


def test_create_list_reset_and_deactivate_an_advertiser_user(app: Flask, client: FlaskClient) -> None:
    advertiser_id = _advertiser(app)
    made = _ok(
        app,
        "create-advertiser-user",
        str(advertiser_id),
        "Ops@Acme.test",
        "--password-stdin",
        stdin="first-pass\n",
    )
    listed = _ok(app, "list-advertiser-users", "--json")
    advertiser_log_in(client, "ops@acme.test", "first-pass")

    reset = _ok(
        app, "reset-advertiser-user-password", str(made["id"]), "--password-stdin", stdin="second-pass\n"
    )
    after_reset = client.get("/advertiser/transactions")
    advertiser_log_in(client, "ops@acme.test", "second-pass")
    off = _ok(app, "deactivate-advertiser-user", str(made["id"]))
    after_deactivation = client.get("/advertiser/transactions")

    assert set(made) == {"id"}
    assert listed["advertiser_users"] == [
        {
            "id": made["id"],
            "email": "ops@acme.test",
            "advertiser_id": advertiser_id,
            "advertiser": "Acme Shop",
            "status": "active",
            "created": listed["advertiser_users"][0]["created"],
        }
    ]
    assert reset == {"id": made["id"]}
    assert after_reset.status_code == 302  # a new password ends the sessions
    assert off == {"id": made["id"], "status": "deactivated", "changed": True}
    assert after_deactivation.status_code == 302
    assert _ok(app, "reactivate-advertiser-user", str(made["id"]))["status"] == "active"


def test_create_refuses_a_taken_email_an_unknown_advertiser_and_a_short_password(app: Flask) -> None:
    advertiser_id = _advertiser(app)
    _ok(
        app,
        "create-advertiser-user",
        str(advertiser_id),
        "a@shop.test",
        "--password-stdin",
        stdin="long-enough\n",
    )

    for args, stdin, field in (
        ((str(advertiser_id), "a@shop.test"), "long-enough\n", "email"),
        (("999999", "b@shop.test"), "long-enough\n", "advertiser_id"),
        ((str(advertiser_id), "c@shop.test"), "short\n", "password"),
    ):
        code, _, err = _cli(app, "create-advertiser-user", *args, "--password-stdin", stdin=stdin)
        assert code != 0 and f"{field}:" in err, err
    with get_db(app).session() as session:
        assert session.query(AdvertiserUser).count() == 1


def test_the_demo_seed_makes_an_advertiser_login(app: Flask, client: FlaskClient) -> None:
    with get_db(app).session() as session:
        seeded = demo.seed(session, "http://127.0.0.1:5000")
        session.commit()

    user = seeded.details["advertiser"]["user"]
    advertiser_log_in(client, user["email"], user["password"])

    assert user["email"] == demo.DEMO_ADVERTISER_EMAIL
    assert client.get("/advertiser/integration").status_code == 200
    assert csrf_of(client, "/advertiser/upload")
