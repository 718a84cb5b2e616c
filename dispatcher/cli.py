"""Administrative commands (`flask --app app <command>`), each printing one JSON object on stdout."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from dispatcher import accounts, demo
from dispatcher.db import get_db
from dispatcher.migrate import db_group
from dispatcher.models import StaffRole
from dispatcher.retention import prune_command
from dispatcher.validation import FieldError


class CommandError(click.ClickException):
    """Printed as one line, `Error: <field>: <problem>, got <value>`, with exit status 1."""


def _emit(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, sort_keys=True))


def _field_errors_as_one_line(command: Callable[..., None]) -> Callable[..., None]:
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except FieldError as exc:
            raise CommandError(str(exc)) from None

    return wrapper


@click.command("create-publisher", help="Create a publisher; prints its id and API token (shown once).")
@click.argument("name")
@click.argument("email")
@click.option("--password", required=True, help="At least 8 characters.")
@_field_errors_as_one_line
@with_appcontext
def create_publisher(name: str, email: str, password: str) -> None:
    with get_db(current_app).session() as session:
        created = accounts.create_publisher(session, name, email, password)
        _emit({"id": created.publisher.id, "api_token": created.api_token})


@click.command("create-traffic-source", help="Add a traffic source (site, app, list) to a publisher.")
@click.argument("publisher_id")
@click.argument("name")
@_field_errors_as_one_line
@with_appcontext
def create_traffic_source(publisher_id: str, name: str) -> None:
    with get_db(current_app).session() as session:
        source = accounts.create_traffic_source(session, publisher_id, name)
        _emit({"id": source.id})


@click.command(
    "create-advertiser", help="Create an advertiser; prints its API key and S2S token (shown once)."
)
@click.argument("name")
@_field_errors_as_one_line
@with_appcontext
def create_advertiser(name: str) -> None:
    with get_db(current_app).session() as session:
        created = accounts.create_advertiser(session, name)
        _emit({"id": created.advertiser.id, "api_key": created.api_key, "s2s_token": created.s2s_token})


@click.command("create-program", help="Create an advertiser's program.")
@click.argument("advertiser_id")
@click.argument("name")
@click.option("--landing-url", required=True, help="Where clicks land; {clickid} is replaced, else appended.")
@click.option("--commission", required=True, help="10% (percent of sale) or 5.00 (flat per event).")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code.")
@click.option("--allow-clickless", is_flag=True, help="Accept transactions without a click id.")
@click.option(
    "--allow-advertiser-commission", is_flag=True, help="Accept the commission the advertiser reports."
)
@_field_errors_as_one_line
@with_appcontext
def create_program(
    advertiser_id: str,
    name: str,
    landing_url: str,
    commission: str,
    currency: str,
    allow_clickless: bool,
    allow_advertiser_commission: bool,
) -> None:
    with get_db(current_app).session() as session:
        program = accounts.create_program(
            session,
            advertiser_id,
            name,
            landing_url=landing_url,
            commission=commission,
            currency=currency,
            allow_clickless=allow_clickless,
            allow_advertiser_commission=allow_advertiser_commission,
        )
        _emit({"id": program.id})


@click.command("create-staff", help="Create a support staff user.")
@click.argument("email")
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--role", default=StaffRole.SUPPORT.value, show_default=True, help="support or admin.")
@_field_errors_as_one_line
@with_appcontext
def create_staff(email: str, password: str, role: str) -> None:
    with get_db(current_app).session() as session:
        staff = accounts.create_staff(session, email, password, role)
        _emit({"id": staff.id})


@click.command("seed-demo", help="Fill an EMPTY database with a demo network; prints its logins and secrets.")
@click.option("--base-url", default="http://127.0.0.1:5000", show_default=True, help="Where this app runs.")
@with_appcontext
def seed_demo(base_url: str) -> None:
    with get_db(current_app).session() as session:
        result = demo.seed(session, base_url)
        _emit({"seeded": result.seeded, **result.details})


def init_app(app: Flask) -> None:
    for command in (
        create_publisher,
        create_traffic_source,
        create_advertiser,
        create_program,
        create_staff,
        seed_demo,
        prune_command,
    ):
        app.cli.add_command(command)
    app.cli.add_command(db_group)
