"""Administrative commands (`flask --app app <command>`), each printing one JSON object on stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from dispatcher import account_admin, accounts, demo, validation
from dispatcher.db import get_db
from dispatcher.delivery_details import iso_time
from dispatcher.migrate import db_group, schema_problem
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


def _password_options(command: Callable[..., None]) -> Callable[..., None]:
    """`--password-stdin`, and `--password` kept for the documented scripts; with neither, a hidden prompt
    asked twice. The command receives one `password` argument, already read."""

    @wraps(command)
    def wrapper(*args: Any, password: str | None, password_stdin: bool, **kwargs: Any) -> None:
        command(*args, password=_read_password(password, password_stdin), **kwargs)

    from_stdin = click.option(
        "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
    )
    given = click.option(
        "--password",
        help="At least 8 characters. Avoid it: it lands in shell history and the process list; "
        "without --password or --password-stdin the password is asked for, hidden.",
    )
    return given(from_stdin(wrapper))


def _read_password(given: str | None, from_stdin: bool) -> str:
    if given is not None and from_stdin:
        raise CommandError("password: give --password or --password-stdin, not both")
    password: str
    if given is not None:
        click.echo(
            "Warning: --password is kept in your shell history and visible to other users of this host; "
            "prefer the prompt or --password-stdin.",
            err=True,
        )
        password = given
    elif from_stdin:
        # One line, as `docker login --password-stdin` reads it: the newline an `echo` adds is not part of it.
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))
    try:
        return validation.password("password", password)
    except FieldError as exc:
        raise CommandError(str(exc)) from None


@click.command("create-publisher", help="Create a publisher; prints its id and API token (shown once).")
@click.argument("name")
@click.argument("email")
@_password_options
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
@_password_options
@click.option("--role", default=StaffRole.SUPPORT.value, show_default=True, help="support or admin.")
@_field_errors_as_one_line
@with_appcontext
def create_staff(email: str, password: str, role: str) -> None:
    with get_db(current_app).session() as session:
        staff = accounts.create_staff(session, email, password, role)
        _emit({"id": staff.id})


@click.command(
    "create-advertiser-user", help="Create a login to the advertiser portal for an advertiser; prints its id."
)
@click.argument("advertiser_id")
@click.argument("email")
@_password_options
@_field_errors_as_one_line
@with_appcontext
def create_advertiser_user(advertiser_id: str, email: str, password: str) -> None:
    with get_db(current_app).session() as session:
        user = accounts.create_advertiser_user(session, advertiser_id, email, password)
        _emit({"id": user.id})


def _listing(name: str, rows: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...]) -> None:
    if as_json:
        _emit({name: rows})
        return
    table = [columns, *(tuple(str(row[column]) for column in columns) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


_JSON = click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout, for scripts.")


@click.command("list-publishers", help="List publishers: id, name, email, status, created.")
@_JSON
@with_appcontext
def list_publishers(as_json: bool) -> None:
    with get_db(current_app).session() as session:
        rows = account_admin.list_publishers(session)
    _listing("publishers", rows, as_json, ("id", "name", "email", "status", "created"))


@click.command("list-advertisers", help="List advertisers: id, name, status, created.")
@_JSON
@with_appcontext
def list_advertisers(as_json: bool) -> None:
    with get_db(current_app).session() as session:
        rows = account_admin.list_advertisers(session)
    _listing("advertisers", rows, as_json, ("id", "name", "status", "created"))


@click.command("list-programs", help="List programs with their advertiser and commission.")
@click.option("--advertiser", "advertiser_id", help="Only this advertiser's programs (its id).")
@_JSON
@_field_errors_as_one_line
@with_appcontext
def list_programs(advertiser_id: str | None, as_json: bool) -> None:
    with get_db(current_app).session() as session:
        rows = account_admin.list_programs(session, advertiser_id)
    columns = ("id", "name", "advertiser_id", "advertiser", "commission", "currency", "status", "created")
    _listing("programs", rows, as_json, columns)


@click.command("list-staff", help="List staff users: id, email, role, status, created.")
@_JSON
@with_appcontext
def list_staff(as_json: bool) -> None:
    with get_db(current_app).session() as session:
        rows = account_admin.list_staff(session)
    _listing("staff", rows, as_json, ("id", "email", "role", "status", "created"))


@click.command(
    "list-advertiser-users", help="List advertiser portal users: id, email, advertiser, status, created."
)
@_JSON
@with_appcontext
def list_advertiser_users(as_json: bool) -> None:
    with get_db(current_app).session() as session:
        rows = account_admin.list_advertiser_users(session)
    columns = ("id", "email", "advertiser_id", "advertiser", "status", "created")
    _listing("advertiser_users", rows, as_json, columns)


def _password_reset_command(kind: str) -> click.Command:
    @_password_options
    @_field_errors_as_one_line
    @with_appcontext
    def command(account_id: str, password: str) -> None:
        with get_db(current_app).session() as session:
            reset = account_admin.reset_password(session, kind, account_id, password)
        _emit({"id": reset})

    summary = f"Set a new password for a {kind} account (asked for, hidden); its signed-in sessions end."
    argument = click.argument("account_id", metavar=f"{kind.upper().replace('-', '_')}_ID")
    return click.command(f"reset-{kind}-password", help=summary)(argument(command))


def _status_command(kind: str, active: bool, change: Callable[..., account_admin.Change]) -> click.Command:
    verb = "reactivate" if active else "deactivate"

    @_field_errors_as_one_line
    @with_appcontext
    def command(party_id: str) -> None:
        with get_db(current_app).session() as session:
            result = change(session, party_id, active)
        payload: dict[str, Any] = {"id": result.id, "status": "active" if active else "deactivated"}
        payload["changed"] = result.changed
        if kind == "publisher":
            payload["postbacks"] = result.postbacks
        _emit(payload)

    summary = _STATUS_HELP[kind, active]
    argument = click.argument("party_id", metavar=f"{kind.upper().replace('-', '_')}_ID")
    return click.command(f"{verb}-{kind}", help=summary)(argument(command))


_STATUS_HELP = {
    ("publisher", False): "Deactivate a publisher: no portal login, no API token, its postbacks paused, "
    "its links refused. Prints whether it changed and how many postbacks were paused.",
    ("publisher", True): "Reactivate a publisher and resume the postbacks its deactivation paused.",
    ("advertiser", False): "Deactivate an advertiser: its API key and S2S token are refused (403), its "
    "programs' links record no click.",
    ("advertiser", True): "Reactivate an advertiser (its current key and token work again).",
    ("program", False): "Deactivate a program: its tracking links answer 404 instead of recording clicks.",
    ("program", True): "Reactivate a program.",
    ("staff", False): "Deactivate a staff user: no console sign-in, no staff API token; sessions end.",
    ("staff", True): "Reactivate a staff user.",
    ("advertiser-user", False): "Deactivate an advertiser portal user: no sign-in; its sessions end.",
    ("advertiser-user", True): "Reactivate an advertiser portal user.",
}


def _rotate_command(
    name: str,
    id_name: str,
    field: str,
    rotate: Callable[..., account_admin.Rotated],
    summary: str,
    *,
    grace: bool = True,
) -> click.Command:
    @_field_errors_as_one_line
    @with_appcontext
    def command(party_id: str, grace: str | None = None) -> None:
        extra = {} if grace is None else {"grace": account_admin.grace_period("grace", grace)}
        with get_db(current_app).session() as session:
            rotated = rotate(session, party_id, **extra)
        payload: dict[str, Any] = {"id": int(party_id), field: rotated.secret}
        if rotated.old_valid_until is not None:
            payload["old_valid_until"] = iso_time(rotated.old_valid_until)
        _emit(payload)

    decorated = click.argument("party_id", metavar=id_name)(command)
    if grace:
        decorated = click.option(
            "--grace",
            default="0",
            show_default=True,
            help="How long the old one keeps working: 0 (stops at once), 90m, 24h, 7d (at most 30d).",
        )(decorated)
    return click.command(name, help=summary)(decorated)


_ROTATIONS = (
    _rotate_command(
        "rotate-advertiser-key",
        "ADVERTISER_ID",
        "api_key",
        account_admin.rotate_advertiser_key,
        "Give an advertiser a new API key, printed once; the old key is refused at once or after --grace.",
    ),
    _rotate_command(
        "rotate-advertiser-s2s-token",
        "ADVERTISER_ID",
        "s2s_token",
        account_admin.rotate_advertiser_s2s_token,
        "Give an advertiser a new S2S token, printed once; the old one is refused at once or after --grace.",
    ),
    _rotate_command(
        "rotate-publisher-token",
        "PUBLISHER_ID",
        "api_token",
        account_admin.rotate_publisher_token,
        "Give a publisher a new API token, printed once; the old token is refused at once.",
        grace=False,
    ),
)
_STATUS_CHANGES = tuple(
    _status_command(kind, active, change)
    for kind, change in (
        ("publisher", account_admin.set_publisher_active),
        ("advertiser", account_admin.set_advertiser_active),
        ("program", account_admin.set_program_active),
        ("staff", account_admin.set_staff_active),
        ("advertiser-user", account_admin.set_advertiser_user_active),
    )
    for active in (False, True)
)


@click.command("seed-demo", help="Fill an EMPTY database with a demo network; prints its logins and secrets.")
@click.option("--base-url", default="http://127.0.0.1:5000", show_default=True, help="Where this app runs.")
@with_appcontext
def seed_demo(base_url: str) -> None:
    with get_db(current_app).session() as session:
        result = demo.seed(session, base_url)
        _emit({"seeded": result.seeded, **result.details})


def _on_migrated_schema(command: click.Command) -> click.Command:
    """`command`, refusing an unmigrated (or older) schema with one line naming the fix, exit status 1:
    before it asks for anything (a password) or writes, where it would have ended in a traceback."""
    callback = command.callback
    assert callback is not None

    @wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        problem = schema_problem(get_db(current_app).engine)
        if problem is not None:
            raise click.ClickException(problem)
        return callback(*args, **kwargs)

    command.callback = with_appcontext(checked)
    return command


# Every administrative command, wrapped once here at import; `db`, which builds the schema, is not.
ADMIN_COMMANDS = tuple(
    _on_migrated_schema(command)
    for command in (
        create_publisher,
        create_traffic_source,
        create_advertiser,
        create_program,
        create_staff,
        create_advertiser_user,
        seed_demo,
        prune_command,
        list_publishers,
        list_advertisers,
        list_programs,
        list_staff,
        list_advertiser_users,
        _password_reset_command("publisher"),
        _password_reset_command("staff"),
        _password_reset_command("advertiser-user"),
        *_STATUS_CHANGES,
        *_ROTATIONS,
    )
)


def init_app(app: Flask) -> None:
    for command in ADMIN_COMMANDS:
        app.cli.add_command(command)
    app.cli.add_command(db_group)
