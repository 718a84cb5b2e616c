"""Retention: `flask --app app prune` keeps the database bounded.

Two rules, each with a documented default: attempts' response excerpts and headers are cleared after
`--attempt-excerpts-days` (30), and succeeded deliveries (with their attempts) are deleted after
`--succeeded-days` (90). Failed and pending deliveries, transactions, clicks and the audit log are kept.
Work goes in batches of `BATCH` ids, each its own short transaction, so no table is locked for long and the
workers keep writing meanwhile; running it again continues where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import Select, delete, func, null, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.db import get_db
from dispatcher.models import Attempt, Delivery, DeliveryState

ATTEMPT_EXCERPTS_DAYS = 30
SUCCEEDED_DAYS = 90
BATCH = 1000


@dataclass(frozen=True)
class PruneResult:
    attempt_excerpts_before: str
    succeeded_before: str
    attempts_cleared: int
    deliveries_deleted: int
    dry_run: bool


def prune(
    sessions: sessionmaker[Session],
    *,
    attempt_excerpts_days: int = ATTEMPT_EXCERPTS_DAYS,
    succeeded_days: int = SUCCEEDED_DAYS,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = BATCH,
) -> PruneResult:
    now = now or datetime.now(UTC)
    excerpts_before = now - timedelta(days=attempt_excerpts_days)
    succeeded_before = now - timedelta(days=succeeded_days)
    # Deleting first: no point clearing the excerpts of attempts about to go.
    if dry_run:
        with sessions() as session:
            deleted = _count(session, _old_succeeded(succeeded_before))
            kept = _old_excerpts(excerpts_before).where(
                Attempt.delivery_id.not_in(_old_succeeded(succeeded_before))
            )
            cleared = _count(session, kept)
    else:
        deleted = _in_batches(sessions, _old_succeeded(succeeded_before), _delete_deliveries, batch)
        cleared = _in_batches(sessions, _old_excerpts(excerpts_before), _clear_excerpts, batch)
    return PruneResult(excerpts_before.isoformat(), succeeded_before.isoformat(), cleared, deleted, dry_run)


def _old_excerpts(before: datetime) -> Select[int]:
    return select(Attempt.id).where(Attempt.started_at < before, Attempt.response_excerpt.is_not(None))


def _old_succeeded(before: datetime) -> Select[int]:
    return select(Delivery.id).where(
        Delivery.state == DeliveryState.SUCCEEDED.value, Delivery.completed_at < before
    )


def _count(session: Session, ids: Select[int]) -> int:
    return int(session.scalar(select(func.count()).select_from(ids.subquery())) or 0)


Apply = Callable[[Session, list[int]], None]


def _in_batches(sessions: sessionmaker[Session], ids: Select[int], apply: Apply, batch: int) -> int:
    """Walk the matching ids upwards, `batch` at a time, one short transaction each."""
    key = ids.selected_columns[0]
    done, after = 0, 0
    while True:
        with sessions() as session, session.begin():
            chunk = list(session.scalars(ids.where(key > after).order_by(key).limit(batch)))
            if not chunk:
                return done
            apply(session, chunk)
        done, after = done + len(chunk), chunk[-1]


def _clear_excerpts(session: Session, ids: list[int]) -> None:
    # null(): SQL NULL, not the JSON 'null' a Python None becomes in a JSON column.
    session.execute(
        update(Attempt).where(Attempt.id.in_(ids)).values(response_excerpt=None, response_headers=null())
    )


def _delete_deliveries(session: Session, ids: list[int]) -> None:
    # Attempts first: SQLite only cascades with foreign keys on, and explicit is clearer anyway.
    session.execute(delete(Attempt).where(Attempt.delivery_id.in_(ids)))
    session.execute(
        delete(Delivery).where(Delivery.id.in_(ids), Delivery.state == DeliveryState.SUCCEEDED.value)
    )


@click.command("prune", help="Clear old attempts' response excerpts and delete old succeeded deliveries.")
@click.option(
    "--attempt-excerpts-days",
    default=ATTEMPT_EXCERPTS_DAYS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Clear response excerpts and headers of attempts older than this.",
)
@click.option(
    "--succeeded-days",
    default=SUCCEEDED_DAYS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Delete succeeded deliveries (and their attempts) completed longer ago than this.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be pruned.")
@with_appcontext
def prune_command(attempt_excerpts_days: int, succeeded_days: int, dry_run: bool) -> None:
    result = prune(
        get_db(current_app).session_factory,
        attempt_excerpts_days=attempt_excerpts_days,
        succeeded_days=succeeded_days,
        dry_run=dry_run,
    )
    click.echo(json.dumps(asdict(result), sort_keys=True))
