"""`flask --app app prune`: old excerpts cleared, old succeeded deliveries deleted, everything else kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select

from dispatcher.db import get_db
from dispatcher.models import Attempt, Delivery
from dispatcher.retention import prune
from tests.dispatcher import factories

NOW = datetime.now(UTC)


def _history(app: Flask) -> dict[str, int]:
    """Deliveries by age and state, each with one attempt that kept its answer."""
    made = {}
    with get_db(app).session() as session:
        owner = factories.publisher(session)
        hook = factories.postback(session, owner)
        shop = factories.program(session)
        for name, state, days in [
            ("old_ok", "succeeded", 100),
            ("old_failed", "failed", 100),
            ("month_ok", "succeeded", 40),
            ("new_ok", "succeeded", 1),
            ("old_pending", "pending", 100),
        ]:
            at = NOW - timedelta(days=days)
            row = factories.delivery(
                session,
                hook,
                factories.event(session, factories.transaction(session, owner, shop)),
                state=state,
                created_at=at,
                completed_at=None if state == "pending" else at,
            )
            session.add(
                Attempt(
                    delivery_id=row.id,
                    number=1,
                    outcome="succeeded" if state == "succeeded" else "failed",
                    started_at=at,
                    method="GET",
                    url="http://x/",
                    response_excerpt="body",
                    response_headers={"Server": "x"},
                )
            )
            made[name] = row.id
    return made


def _state(app: Flask) -> tuple[set[int], dict[int, str | None]]:
    with get_db(app).session() as session:
        deliveries = set(session.scalars(select(Delivery.id)))
        excerpts = dict(session.execute(select(Attempt.delivery_id, Attempt.response_excerpt)).all())
        return deliveries, excerpts


def test_prune_clears_old_excerpts_and_deletes_old_successes_only(app: Flask) -> None:
    made = _history(app)

    result = prune(get_db(app).session_factory, batch=1)

    deliveries, excerpts = _state(app)
    assert (result.deliveries_deleted, result.attempts_cleared) == (1, 3)
    assert deliveries == set(made.values()) - {made["old_ok"]}
    assert excerpts == {
        made["old_failed"]: None,
        made["month_ok"]: None,
        made["new_ok"]: "body",
        made["old_pending"]: None,
    }


def test_a_dry_run_counts_and_changes_nothing(app: Flask) -> None:
    made = _history(app)

    result = prune(get_db(app).session_factory, attempt_excerpts_days=50, succeeded_days=30, dry_run=True)

    assert (result.deliveries_deleted, result.attempts_cleared, result.dry_run) == (2, 2, True)
    assert _state(app)[0] == set(made.values())


def test_prune_twice_finds_nothing_the_second_time(app: Flask) -> None:
    _history(app)
    prune(get_db(app).session_factory)

    again = prune(get_db(app).session_factory)

    assert (again.deliveries_deleted, again.attempts_cleared) == (0, 0)


def test_the_command_prints_one_json_object(app: Flask) -> None:
    _history(app)

    result = app.test_cli_runner().invoke(
        args=["prune", "--succeeded-days", "30", "--attempt-excerpts-days", "2"]
    )

    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert (printed["deliveries_deleted"], printed["attempts_cleared"], printed["dry_run"]) == (2, 2, False)


def test_the_command_refuses_a_non_positive_age(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["prune", "--succeeded-days", "0"])

    assert result.exit_code != 0 and "--succeeded-days" in result.output
