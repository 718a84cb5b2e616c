"""`flask --app app db ...`: Alembic migrations, pointed at the app's DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from flask import current_app
from flask.cli import with_appcontext

from dispatcher.db import get_db

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option: ini values treat '%' as interpolation.
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


@click.group("db", help="Database migrations (Alembic).")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Migrate the database to REVISION (default: the latest).")
@click.argument("revision", default="head")
@with_appcontext
def upgrade_command(revision: str) -> None:
    upgrade(get_db(current_app).url, revision)


@db_group.command("downgrade", help="Migrate the database back to REVISION (e.g. -1 or base).")
@click.argument("revision")
@with_appcontext
def downgrade_command(revision: str) -> None:
    command.downgrade(alembic_config(get_db(current_app).url), revision)


@db_group.command("current", help="Show the database's revision.")
@with_appcontext
def current_command() -> None:
    command.current(alembic_config(get_db(current_app).url))


@db_group.command("revision", help="Write a new migration, compared against the models with --autogenerate.")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate", is_flag=True)
@with_appcontext
def revision_command(message: str, autogenerate: bool) -> None:
    command.revision(alembic_config(get_db(current_app).url), message=message, autogenerate=autogenerate)
