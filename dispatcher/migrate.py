"""`flask --app app db ...`: Alembic migrations, pointed at the app's DATABASE_URL."""

from __future__ import annotations

import functools
from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import Engine, inspect

from dispatcher.db import get_db
from dispatcher.models import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
UPGRADE_COMMAND = "flask --app app db upgrade"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option: ini values treat '%' as interpolation.
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def schema_problem(engine: Engine) -> str | None:
    """Why this code cannot run on the database's schema, naming the fix; None when it can. Reads only."""
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
        tables = set(inspect(connection).get_table_names())
    database = engine.url.render_as_string(hide_password=True)
    fix = f"run `{UPGRADE_COMMAND}` first"
    if current:
        heads, known = _revisions()
        # A revision this code does not know is newer (a rolling upgrade migrates before new code starts).
        behind = sorted((current & known) - heads)
        if not behind:
            return None
        return (
            f"the database {database} is at revision {', '.join(behind)}, this code needs "
            f"{', '.join(sorted(heads))}: {fix}"
        )
    missing = sorted(set(Base.metadata.tables) - tables)
    if not missing:
        return None  # built from the models without Alembic (the test suite does)
    what = "no tables" if len(missing) == len(Base.metadata.tables) else f"no table {', '.join(missing)}"
    return f"the database {database} is not migrated ({what}): {fix}"


@functools.cache
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """This code's head revisions and every revision it knows."""
    script = ScriptDirectory.from_config(alembic_config(""))
    return frozenset(script.get_heads()), frozenset(s.revision for s in script.walk_revisions())


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
