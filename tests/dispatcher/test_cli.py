"""The administrative commands: one JSON object on success, one line naming the argument on error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import create_engine, inspect, select

from app import create_app
from dispatcher.credentials import check_password, check_secret, split_token
from dispatcher.db import get_db
from dispatcher.models import Advertiser, Program, Publisher, StaffUser, TrafficSource
from tests.conftest import app_settings

ROOT = Path(__file__).resolve().parents[2]


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def ok(app: Flask, *args: str) -> dict[str, Any]:
    result = run(app, *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    payload: dict[str, Any] = json.loads(lines[0])
    return payload


def fails(app: Flask, *args: str) -> str:
    result = run(app, *args)
    assert result.exit_code != 0
    # `--password` on the command line adds a warning line of its own (shell history) before any error.
    lines = [
        line for line in result.stderr.strip().splitlines() if not line.startswith("Warning: --password")
    ]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_create_publisher_stores_only_hashes_and_shows_the_token_once(app: Flask) -> None:
    out = ok(app, "create-publisher", "Acme Media", "Ops@Acme.test", "--password", "s3cret-pass")

    token = split_token(out["api_token"], "pub")
    assert token is not None
    with get_db(app).session() as session:
        row = session.get_one(Publisher, out["id"])
        assert row.email == "ops@acme.test"
        assert out["api_token"] not in (row.api_token_hash or "")
        assert row.api_token_id == token.key_id
        assert check_secret(row.api_token_hash, token.secret)
        assert not check_secret(row.api_token_hash, token.secret + "x")
        assert "s3cret-pass" not in row.password_hash
        assert check_password(row.password_hash, "s3cret-pass")


def test_create_traffic_source_belongs_to_the_publisher(app: Flask) -> None:
    publisher = ok(app, "create-publisher", "P", "p@x.test", "--password", "password1")

    out = ok(app, "create-traffic-source", str(publisher["id"]), "Coupon site")

    with get_db(app).session() as session:
        source = session.get_one(TrafficSource, out["id"])
        assert (source.publisher_id, source.name) == (publisher["id"], "Coupon site")


def test_create_advertiser_returns_an_api_key_and_an_s2s_token(app: Flask) -> None:
    out = ok(app, "create-advertiser", "Shoe Shop")

    api_key, s2s = split_token(out["api_key"], "adv"), split_token(out["s2s_token"], "s2s")
    assert api_key is not None and s2s is not None
    with get_db(app).session() as session:
        row = session.get_one(Advertiser, out["id"])
        assert check_secret(row.api_key_hash, api_key.secret)
        assert check_secret(row.s2s_token_hash, s2s.secret)
        assert not check_secret(row.api_key_hash, s2s.secret)


@pytest.mark.parametrize(
    ("commission", "kind", "value"),
    [
        ("10%", "percent", Decimal("10")),
        ("7.5 %", "percent", Decimal("7.5")),
        ("5.00", "flat", Decimal("5.00")),
    ],
)
def test_create_program_takes_a_percent_or_a_flat_commission(
    app: Flask, commission: str, kind: str, value: Decimal
) -> None:
    advertiser = ok(app, "create-advertiser", "Shop")

    out = ok(
        app,
        "create-program",
        str(advertiser["id"]),
        "Shoes EU",
        "--landing-url",
        "https://shop.example/landing?ref={clickid}",
        "--commission",
        commission,
        "--currency",
        "eur",
    )

    with get_db(app).session() as session:
        program = session.get_one(Program, out["id"])
        assert (program.commission_type, program.commission_value, program.currency) == (kind, value, "EUR")
        assert program.landing_url == "https://shop.example/landing?ref={clickid}"


def test_create_staff(app: Flask) -> None:
    out = ok(app, "create-staff", "help@network.test", "--password", "password1", "--role", "admin")

    with get_db(app).session() as session:
        staff = session.get_one(StaffUser, out["id"])
        assert (staff.email, staff.role) == ("help@network.test", "admin")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["create-publisher", "P", "not-an-email", "--password", "password1"], "email: must be an email"),
        (["create-publisher", "P", "a@b.test", "--password", "short"], "password: must be at least 8"),
        (["create-publisher", "  ", "a@b.test", "--password", "password1"], "name: must not be empty"),
        (["create-traffic-source", "abc", "Blog"], "publisher_id: must be a whole number, got 'abc'"),
        (["create-traffic-source", "999", "Blog"], "publisher_id: is not a publisher, got '999'"),
        (["create-advertiser", ""], "name: must not be empty"),
        (
            ["create-program", "1", "X", "--landing-url", "ftp://x", "--commission", "5"],
            "landing_url: must be",
        ),
        (["create-program", "1", "X", "--landing-url", "https://x.test", "--commission", "ten"], "'ten'"),
        (["create-program", "1", "X", "--landing-url", "https://x.test", "--commission", "150%"], "'150%'"),
        (["create-program", "1", "X", "--landing-url", "https://x.test", "--commission", "-1"], "'-1'"),
        (
            [
                "create-program",
                "1",
                "X",
                "--landing-url",
                "https://x.test",
                "--commission",
                "5",
                "--currency",
                "EURO",
            ],
            "currency: must be an ISO 4217 currency code such as USD or EUR, got 'EURO'",
        ),
        (
            ["create-program", "999", "X", "--landing-url", "https://x.test", "--commission", "5"],
            "advertiser_id",
        ),
        (["create-staff", "s@x.test", "--password", "password1", "--role", "god"], "role: must be one of"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line_naming_the_argument(
    app: Flask, args: list[str], expected: str
) -> None:
    line = fails(app, *args)

    assert line.startswith("Error: ")
    assert expected in line


def test_a_second_publisher_with_the_same_email_is_refused_and_nothing_is_written(app: Flask) -> None:
    ok(app, "create-publisher", "P", "same@x.test", "--password", "password1")

    line = fails(app, "create-publisher", "Q", "SAME@x.test", "--password", "password1")

    assert "email: is already registered" in line
    with get_db(app).session() as session:
        assert len(session.scalars(select(Publisher)).all()) == 1


@pytest.fixture
def unmigrated_app(tmp_path: Path, empty_database_url: str, redis_url: str) -> Iterator[Flask]:
    app = create_app(app_settings(tmp_path, empty_database_url, redis_url))
    yield app
    get_db(app).dispose()


def _table_names(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "args",
    [
        ["create-publisher", "P", "p@x.test"],  # refused before the password is asked for
        ["create-traffic-source", "1", "Blog"],
        ["create-advertiser", "Shop"],
        ["list-publishers"],
        ["rotate-advertiser-key", "1"],
        ["deactivate-program", "1"],
        ["reset-staff-password", "1", "--password-stdin"],
        ["seed-demo"],
        ["prune"],
    ],
    ids=lambda args: args[0],
)
def test_an_unmigrated_database_is_refused_in_one_line_naming_the_migrate_command(
    unmigrated_app: Flask, empty_database_url: str, args: list[str]
) -> None:
    result = unmigrated_app.test_cli_runner().invoke(args=args, input="password1\n")

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception  # not a database error
    assert "Traceback" not in result.output
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: the database ")
    assert "is not migrated (no tables): run `flask --app app db upgrade` first" in line
    assert _table_names(empty_database_url) == []  # nothing written


def test_a_database_behind_this_code_is_refused_naming_its_revision(
    unmigrated_app: Flask, empty_database_url: str
) -> None:
    assert run(unmigrated_app, "db", "upgrade", "0009").exit_code == 0

    line = fails(unmigrated_app, "create-advertiser", "Shop")

    assert "is at revision 0009, this code needs" in line
    assert line.endswith("run `flask --app app db upgrade` first")


def test_the_migrate_command_works_on_an_unmigrated_database_and_then_the_commands_do(
    unmigrated_app: Flask,
) -> None:
    assert run(unmigrated_app, "db", "upgrade").exit_code == 0

    advertiser = ok(unmigrated_app, "create-advertiser", "Shop")

    assert ok(unmigrated_app, "list-advertisers", "--json")["advertisers"][0]["id"] == advertiser["id"]


@pytest.mark.processes
def test_the_real_flask_command_line_refuses_an_unmigrated_database_then_works_migrated(
    tmp_path: Path, redis_url: str
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough",
    }

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "flask", "--app", "app", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    refused = flask("create-advertiser", "Shop")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        f"Error: the database {env['DATABASE_URL']} is not migrated (no tables): "
        "run `flask --app app db upgrade` first"
    ]

    assert flask("db", "upgrade").returncode == 0
    made = flask("create-advertiser", "Shop")
    assert made.returncode == 0, made.stderr
    advertiser = json.loads(made.stdout)
    program = flask(
        "create-program", str(advertiser["id"]), "S", "--landing-url", "https://s.test", "--commission", "10%"
    )
    assert json.loads(program.stdout) == {"id": 1}

    bad = flask("create-program", "1", "S", "--landing-url", "https://s.test", "--commission", "lots")

    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "Error: commission: must be a percent like 10% or a flat amount like 5.00, got 'lots'"
    ]
