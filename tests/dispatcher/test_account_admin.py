"""The network admin's account operations on the command line: list, deactivate and reactivate, rotate
secrets, and passwords kept off the command line; and what a deactivation or a rotation does over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from dispatcher.account_admin import PAUSED_WITH_PUBLISHER
from dispatcher.auth import account_for_password
from dispatcher.credentials import check_password
from dispatcher.db import get_db
from dispatcher.models import Advertiser, AuditEntry, Click, Postback, Publisher, StaffUser
from dispatcher.support.actions import resume_postback
from tests.dispatcher.ledger.conftest import Network, build_network


@pytest.fixture
def network(app: Flask, client: FlaskClient) -> Iterator[Network]:
    with get_db(app).session() as session:
        ids = build_network(app, session)
    yield Network(app=app, client=client, **ids)


def run(app: Flask, *args: str, stdin: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=stdin, catch_exceptions=False)


def ok(app: Flask, *args: str, stdin: str | None = None) -> dict[str, Any]:
    result = run(app, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return payload


def fails(app: Flask, *args: str, stdin: str | None = None) -> str:
    result = run(app, *args, stdin=stdin)
    assert result.exit_code != 0, result.output
    return result.stderr.strip().splitlines()[-1]


def sale(network: Network, api_key: str | None = None, order: str = "A-1") -> Any:
    return network.report(
        {"click_id": network.click(), "order_number": order, "sale_amount": "10.00"}, api_key=api_key
    )


def s2s(network: Network, token: str, order: str = "S-1") -> Any:
    values = {"token": token, "clickid": network.click(), "on": order, "sa": "10.00"}
    return network.client.get("/s2s/transaction", query_string=values)


# Listing


def test_list_programs_shows_advertiser_commission_and_status_as_json(network: Network) -> None:
    ok(network.app, "deactivate-program", str(network.program_id))

    out = ok(network.app, "list-programs", "--json")

    [program] = out["programs"]
    assert program["id"] == network.program_id
    assert (program["name"], program["advertiser"], program["advertiser_id"]) == (
        "Shoes US",
        "Shoe Shop",
        network.advertiser_id,
    )
    assert (program["commission"], program["currency"], program["status"]) == ("10%", "USD", "deactivated")
    assert program["created"].endswith("Z")


def test_list_publishers_and_advertisers_as_json(network: Network) -> None:
    publishers = ok(network.app, "list-publishers", "--json")["publishers"]
    advertisers = ok(network.app, "list-advertisers", "--json")["advertisers"]

    assert [(p["id"], p["name"], p["email"], p["status"]) for p in publishers] == [
        (network.publisher_id, "Acme Media", "ops@acme.example", "active")
    ]
    assert [(a["id"], a["name"], a["status"]) for a in advertisers] == [
        (network.advertiser_id, "Shoe Shop", "active")
    ]
    assert all(
        "api_key" not in a and "api_token" not in p for a, p in zip(advertisers, publishers, strict=True)
    )


def test_list_without_json_is_a_table_with_a_header(network: Network) -> None:
    result = run(network.app, "list-programs")

    assert result.exit_code == 0
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "id",
        "name",
        "advertiser_id",
        "advertiser",
        "commission",
        "currency",
        "status",
        "created",
    ]
    assert row.split()[:2] == [str(network.program_id), "Shoes"]


def test_list_programs_of_an_unknown_advertiser_names_the_option(network: Network) -> None:
    assert (
        fails(network.app, "list-programs", "--advertiser", "999")
        == "Error: advertiser_id: is not an advertiser, got '999'"
    )


# Deactivation


def test_a_deactivated_advertisers_key_and_s2s_token_are_refused_with_403(network: Network) -> None:
    out = ok(network.app, "deactivate-advertiser", str(network.advertiser_id))
    assert out == {"id": network.advertiser_id, "status": "deactivated", "changed": True}

    api = network.client.post(
        "/api/v1/transactions",
        json={"click_id": "x", "order_number": "A-1", "sale_amount": "10.00"},
        headers={"Authorization": f"Bearer {network.api_key}"},
    )
    by_url = network.client.get("/s2s/transaction", query_string={"token": network.s2s_token, "clickid": "x"})

    assert (api.status_code, by_url.status_code) == (403, 403)
    assert "deactivated" in api.json["error"] and "deactivated" in by_url.json["error"]  # type: ignore[index]
    forged = network.client.get("/s2s/transaction", query_string={"token": network.s2s_token + "x"})
    assert forged.status_code == 401  # a wrong secret learns nothing about the account


def test_a_reactivated_advertisers_key_works_again(network: Network) -> None:
    ok(network.app, "deactivate-advertiser", str(network.advertiser_id))
    ok(network.app, "deactivate-program", str(network.program_id))
    ok(network.app, "reactivate-program", str(network.program_id))
    out = ok(network.app, "reactivate-advertiser", str(network.advertiser_id))

    assert out["changed"] is True
    assert sale(network).status_code == 201


def test_a_deactivated_programs_link_records_no_click(network: Network) -> None:
    ok(network.app, "deactivate-program", str(network.program_id))

    response = network.client.get(
        f"/c/{network.program_id}", query_string={"pub": network.publisher_id, "ts": network.source_id}
    )

    assert response.status_code == 404
    assert "Location" not in response.headers
    with network.session() as session:
        assert session.scalar(select(func.count()).select_from(Click)) == 0


def test_deactivating_twice_says_nothing_changed_and_audits_once(network: Network) -> None:
    ok(network.app, "deactivate-program", str(network.program_id))
    again = ok(network.app, "deactivate-program", str(network.program_id))

    assert again["changed"] is False
    with network.session() as session:
        entries = session.scalars(select(AuditEntry)).all()
        assert [(e.action, e.target_type, e.target_id, e.detail) for e in entries] == [
            ("deactivate", "program", str(network.program_id), {"via": "cli"})
        ]


def test_a_deactivated_publisher_cannot_use_its_token_and_its_postbacks_pause_until_reactivated(
    network: Network,
) -> None:
    token = ok(network.app, "rotate-publisher-token", str(network.publisher_id))["api_token"]
    postback_id = network.postback()
    own_pause = network.postback()
    with network.session() as session:
        paused = session.get_one(Postback, own_pause)
        paused.active, paused.paused_reason = False, "Paused by the publisher"
    headers = {"Authorization": f"Bearer {token}"}
    assert network.client.get("/api/v1/postbacks", headers=headers).status_code == 200

    out = ok(network.app, "deactivate-publisher", str(network.publisher_id))

    assert out == {"id": network.publisher_id, "status": "deactivated", "changed": True, "postbacks": 1}
    assert network.client.get("/api/v1/postbacks", headers=headers).status_code == 401
    with network.session() as session:
        postback = session.get_one(Postback, postback_id)
        assert (postback.active, postback.paused_reason) == (False, PAUSED_WITH_PUBLISHER)

    back = ok(network.app, "reactivate-publisher", str(network.publisher_id))

    assert back["postbacks"] == 1
    with network.session() as session:
        assert session.get_one(Postback, postback_id).active is True
        assert session.get_one(Postback, own_pause).active is False  # the publisher's own pause stays
    assert network.client.get("/api/v1/postbacks", headers=headers).status_code == 200


def test_a_deactivated_publishers_new_sale_creates_no_delivery(network: Network) -> None:
    network.postback()
    click_id = network.click()
    ok(network.app, "deactivate-publisher", str(network.publisher_id))

    response = network.report({"click_id": click_id, "order_number": "A-9", "sale_amount": "10.00"})

    assert response.status_code == 201  # the advertiser's report is the record
    assert response.json is not None and response.json["deliveries"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deactivate-publisher", "999"], "Error: publisher_id: is not a publisher, got '999'"),
        (["reactivate-advertiser", "abc"], "Error: advertiser_id: must be a whole number, got 'abc'"),
        (["deactivate-program", "0"], "Error: program_id: must be a positive id, got '0'"),
        (["rotate-advertiser-key", "999"], "Error: advertiser_id: is not an advertiser, got '999'"),
        (["rotate-advertiser-s2s-token", "1.5"], "Error: advertiser_id: must be a whole number, got '1.5'"),
        (["rotate-publisher-token", "999"], "Error: publisher_id: is not a publisher, got '999'"),
    ],
)
def test_an_unknown_id_exits_non_zero_naming_the_argument(app: Flask, args: list[str], message: str) -> None:
    assert fails(app, *args) == message


# Rotation


def test_a_rotated_api_key_refuses_the_old_value_and_accepts_the_new(network: Network) -> None:
    out = ok(network.app, "rotate-advertiser-key", str(network.advertiser_id))

    assert out["id"] == network.advertiser_id and out["api_key"].startswith("adv_")
    assert sale(network, api_key=network.api_key).status_code == 401
    assert sale(network, api_key=out["api_key"]).status_code == 201


def test_a_rotated_s2s_token_refuses_the_old_value_and_accepts_the_new(network: Network) -> None:
    out = ok(network.app, "rotate-advertiser-s2s-token", str(network.advertiser_id))

    assert s2s(network, network.s2s_token).status_code == 401
    assert s2s(network, out["s2s_token"]).status_code == 201
    with network.session() as session:
        assert session.scalars(select(AuditEntry.action)).all() == ["rotate_s2s_token"]


# Passwords


def test_create_publisher_asks_for_the_password_hidden_and_twice(app: Flask) -> None:
    result = run(app, "create-publisher", "P", "p@x.test", stdin="long-password\nlong-password\n")

    assert result.exit_code == 0, result.output
    assert "long-password" not in result.stdout + result.stderr  # hidden: never echoed
    created = json.loads(result.stdout.strip().splitlines()[-1])
    with get_db(app).session() as session:
        assert check_password(session.get_one(Publisher, created["id"]).password_hash, "long-password")


def test_a_mistyped_confirmation_is_asked_again(app: Flask) -> None:
    typed = "long-password\nlong-pasword\nlong-password\nlong-password\n"
    result = run(app, "create-staff", "s@x.test", stdin=typed)

    assert result.exit_code == 0, result.output
    assert "do not match" in result.stderr


def test_create_staff_reads_the_password_from_stdin(app: Flask) -> None:
    out = ok(app, "create-staff", "s@x.test", "--password-stdin", "--role", "admin", stdin="from-a-pipe-1\n")

    with get_db(app).session() as session:
        assert check_password(session.get_one(StaffUser, out["id"]).password_hash, "from-a-pipe-1")


def test_password_on_the_command_line_still_works_with_a_warning(app: Flask) -> None:
    result = run(app, "create-publisher", "P", "p@x.test", "--password", "long-password")

    assert result.exit_code == 0
    assert "shell history" in result.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--password-stdin"], "short\n", "Error: password: must be at least 8 characters, got '***'"),
        (["--password-stdin"], "", "Error: password: must be at least 8 characters, got '***'"),
        (
            ["--password", "long-password", "--password-stdin"],
            "long-password\n",
            "Error: password: give --password or --password-stdin, not both",
        ),
    ],
)
def test_a_bad_password_is_refused_naming_the_field(
    app: Flask, args: list[str], stdin: str, message: str
) -> None:
    assert fails(app, "create-publisher", "P", "p@x.test", *args, stdin=stdin) == message
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Publisher)) == 0


def test_support_cannot_resume_a_postback_of_a_deactivated_publisher(network: Network) -> None:
    postback_id = network.postback()
    ok(network.app, "deactivate-publisher", str(network.publisher_id))
    staff = ok(network.app, "create-staff", "s@x.test", "--password-stdin", stdin="long-password\n")

    with network.session() as session:
        outcome = resume_postback(session, staff["id"], session.get_one(Postback, postback_id), "fixed")

    assert not outcome.done
    assert "publisher is deactivated" in outcome.message
    with network.session() as session:
        assert session.get_one(Postback, postback_id).active is False


def test_a_deactivated_publishers_link_records_no_click(network: Network) -> None:
    ok(network.app, "deactivate-publisher", str(network.publisher_id))

    response = network.client.get(
        f"/c/{network.program_id}", query_string={"pub": network.publisher_id, "ts": network.source_id}
    )

    assert response.status_code == 400
    assert b"pub: is not an active publisher" in response.data
    assert "Location" not in response.headers
    with network.session() as session:
        assert session.scalar(select(func.count()).select_from(Click)) == 0


# Staff and password resets


def test_list_staff_and_a_deactivated_staff_user_cannot_sign_in(app: Flask) -> None:
    staff = ok(
        app, "create-staff", "s@x.test", "--password-stdin", "--role", "admin", stdin="long-password\n"
    )

    out = ok(app, "deactivate-staff", str(staff["id"]))

    assert out == {"id": staff["id"], "status": "deactivated", "changed": True}
    [listed] = ok(app, "list-staff", "--json")["staff"]
    assert (listed["email"], listed["role"], listed["status"]) == ("s@x.test", "admin", "deactivated")
    with get_db(app).session() as session:
        assert account_for_password(session, StaffUser, "s@x.test", "long-password") is None


def test_reset_publisher_password_asks_for_it_and_ends_the_sessions(network: Network) -> None:
    with network.session() as session:
        epoch = session.get_one(Publisher, network.publisher_id).session_epoch

    out = ok(
        network.app,
        "reset-publisher-password",
        str(network.publisher_id),
        stdin="new-secret-1\nnew-secret-1\n",
    )

    assert out == {"id": network.publisher_id}
    with network.session() as session:
        publisher = session.get_one(Publisher, network.publisher_id)
        assert check_password(publisher.password_hash, "new-secret-1")
        assert not check_password(publisher.password_hash, "long-password")
        assert publisher.session_epoch == epoch + 1


def test_reset_password_of_an_unknown_account_names_it(app: Flask) -> None:
    message = fails(app, "reset-staff-password", "999", "--password-stdin", stdin="long-password\n")

    assert message == "Error: staff_id: is not a staff user, got '999'"


# Rotation with a grace period


def test_during_the_grace_period_the_old_key_and_the_new_both_work(network: Network) -> None:
    out = ok(network.app, "rotate-advertiser-key", str(network.advertiser_id), "--grace", "2h")

    assert sale(network, api_key=network.api_key, order="G-1").status_code == 201
    assert sale(network, api_key=out["api_key"], order="G-2").status_code == 201
    until = datetime.fromisoformat(out["old_valid_until"])
    assert timedelta(minutes=119) < until - datetime.now(UTC) <= timedelta(hours=2)


def test_after_the_grace_period_the_old_s2s_token_is_refused(network: Network) -> None:
    out = ok(network.app, "rotate-advertiser-s2s-token", str(network.advertiser_id), "--grace", "90m")
    assert (
        s2s(network, network.s2s_token, order="S-1").status_code == 201
    )  # read with its click, as a sale is

    with network.session() as session:
        session.get_one(Advertiser, network.advertiser_id).previous_s2s_token_until = datetime.now(UTC)

    assert s2s(network, network.s2s_token, order="S-2").status_code == 401
    assert s2s(network, out["s2s_token"], order="S-3").status_code == 201


def test_a_rotation_without_grace_ends_the_previous_grace_period(network: Network) -> None:
    ok(network.app, "rotate-advertiser-key", str(network.advertiser_id), "--grace", "7d")
    newest = ok(network.app, "rotate-advertiser-key", str(network.advertiser_id))

    assert "old_valid_until" not in newest
    assert sale(network, api_key=network.api_key, order="G-1").status_code == 401
    assert sale(network, api_key=newest["api_key"], order="G-2").status_code == 201


def test_a_deactivated_advertisers_old_key_is_refused_during_its_grace_period(network: Network) -> None:
    ok(network.app, "rotate-advertiser-key", str(network.advertiser_id), "--grace", "1d")
    click_id = network.click()
    ok(network.app, "deactivate-advertiser", str(network.advertiser_id))

    answer = network.report(
        {"click_id": click_id, "order_number": "D-1", "sale_amount": "1.00"}, network.api_key
    )
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("grace", "problem"),
    [
        ("5x", "must be 0 or a whole number of m, h or d (90m, 24h, 7d)"),
        ("12", "must be 0 or a whole number of m, h or d (90m, 24h, 7d)"),
        ("31d", "must be at most 30 days"),
    ],
)
def test_a_bad_grace_period_is_refused_naming_it(network: Network, grace: str, problem: str) -> None:
    message = fails(network.app, "rotate-advertiser-key", str(network.advertiser_id), "--grace", grace)

    assert message == f"Error: grace: {problem}, got '{grace}'"
    assert sale(network).status_code == 201  # nothing rotated
