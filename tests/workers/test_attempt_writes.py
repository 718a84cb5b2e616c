"""The attempt log's batch writes on PostgreSQL (one statement a batch, `workers.unnested`) leave exactly the
rows the plain executemany leaves (SQLite's way, and PostgreSQL's before): the "sending" attempt, its outcome
and the delivery's new state, for a success and for a failure to be retried."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from dispatcher.db import Database
from dispatcher.egress.client import Exchange, OutboundRequest
from dispatcher.egress.errors import DeliveryError
from dispatcher.egress.render import Claimed
from dispatcher.models import Attempt, Delivery, ErrorClass, Postback
from tests.workers.conftest import FAST, make_delivery
from workers import attempts, unnested
from workers.retry_policy import decide

pytestmark = pytest.mark.postgres

TOKEN = "test-worker/abc"
NOW = datetime(2026, 12, 4, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    yield database
    database.dispose()


def _claimed(database: Database, delivery_id: int, postback_id: int) -> Claimed:
    with database.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(leased_by=TOKEN, attempt_count=1, lease_expires_at=NOW + timedelta(seconds=20))
        )
        postback = session.get(Postback, postback_id)
        assert postback is not None
        session.expunge(postback)
    return Claimed(delivery_id, 1, 1, postback_id, True, None, None, {}, postback)


ANSWERED = Exchange(
    duration_ms=12,
    resolved_ip="127.0.0.1",
    status_code=200,
    reason="OK",
    headers={"Content-Type": "text/plain", "X-Count": "2"},
    excerpt="<b>ok</b>",
)
REFUSED = DeliveryError(ErrorClass.CONNECT, "connection refused", permanent=False)


def _write(database: Database, successes: Sequence[Claimed], failures: Sequence[Claimed] = ()) -> None:
    """The "sending" rows, then the outcomes: an answer for each of `successes`, a refused connection (to be
    retried) for each of `failures`."""
    requests = {
        c.delivery_id: OutboundRequest(
            "POST", "http://127.0.0.1:9/pb?s=1", {"User-Agent": "t", "X-Name": "Zoë"}, b"a=1&b=\xc3\xa9"
        )
        for c in successes
    } | {
        c.delivery_id: OutboundRequest("GET", "http://127.0.0.1:9/pb?s=2", {"User-Agent": "t"})
        for c in failures
    }
    succeeded = decide(None, 1, FAST)
    outcomes = [
        attempts.Outcome(c, TOKEN, requests[c.delivery_id], ANSWERED, None, succeeded, NOW) for c in successes
    ] + [
        attempts.Outcome(
            c, TOKEN, requests[c.delivery_id], Exchange(error=REFUSED), REFUSED, decide(REFUSED, 1, FAST), NOW
        )
        for c in failures
    ]
    with database.session() as session:
        attempts.write_sending(
            session, [(c, requests[c.delivery_id]) for c in [*successes, *failures]], worker="w", now=NOW
        )
    with database.session() as session:
        attempts.write_outcomes(session, outcomes, auto_pause_after_s=3600, now=NOW)


def _headers_json_type(database: Database, delivery_id: int) -> str | None:
    """JSON null and SQL NULL both load as None through the ORM: the database tells them apart."""
    with database.session() as session:
        query = text("SELECT jsonb_typeof(response_headers) FROM attempts WHERE delivery_id = :id")
        value: str | None = session.scalar(query, {"id": delivery_id})
        return value


def _rows(database: Database, delivery_id: int) -> dict[str, Any]:
    with database.session() as session:
        attempt = session.scalars(select(Attempt).where(Attempt.delivery_id == delivery_id)).one()
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        kept = {
            f"attempt.{k}": v
            for k, v in vars(attempt).items()
            if k not in ("_sa_instance_state", "id", "delivery_id")
        }
        skipped = (
            "_sa_instance_state",
            "id",
            "postback_id",
            "transaction_event_id",
            "publisher_id",
            "transaction_id",
            "created_at",
            "updated_at",
            "next_attempt_at",
        )
        kept |= {f"delivery.{k}": v for k, v in vars(delivery).items() if k not in skipped}
        # Retries are jittered: the time of the next attempt differs by design, its presence does not.
        kept["delivery.next_attempt_at is set"] = delivery.next_attempt_at is not None
        return kept


@pytest.fixture(params=["unnested", "executemany"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which way the batches of these tests (2 rows) are written."""
    monkeypatch.setattr(unnested, "MIN_ROWS", 2 if request.param == "unnested" else 3)
    return str(request.param)


def _deliveries(database: Database, count: int) -> list[Claimed]:
    made = [make_delivery(database, "http://127.0.0.1:9/pb") for _ in range(count)]
    return [_claimed(database, delivery_id, postback_id) for delivery_id, postback_id in made]


def test_one_statement_a_batch_writes_what_executemany_writes(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = _deliveries(database, 8)
    monkeypatch.setattr(unnested, "MIN_ROWS", 2)
    with database.session() as session:
        assert unnested.used_by(session, claimed[:2])
    _write(database, [claimed[0]], [claimed[1]])
    _write(database, claimed[2:4])  # every error column, and the next attempt's time, all NULL
    monkeypatch.setattr(unnested, "MIN_ROWS", 3)
    _write(database, [claimed[4]], [claimed[5]])
    _write(database, claimed[6:8])

    set_based = [_rows(database, c.delivery_id) for c in claimed[:4]]
    executemany = [_rows(database, c.delivery_id) for c in claimed[4:]]
    for one, other in zip(set_based, executemany, strict=True):
        # Only the columns that differ, so that a failure names them.
        assert {k: v for k, v in one.items() if other.get(k) != v} == {}
        assert one.keys() == other.keys()
    assert [_headers_json_type(database, c.delivery_id) for c in claimed] == [
        "object",
        "null",
        "object",
        "object",
    ] * 2
    success, failure, _, _ = set_based
    assert success["attempt.request_headers"] == {"User-Agent": "t", "X-Name": "Zoë"}
    assert success["attempt.request_body"] == "a=1&b=é"
    assert success["attempt.response_headers"] == {"Content-Type": "text/plain", "X-Count": "2"}
    assert success["attempt.started_at"] == NOW
    assert success["delivery.state"] == "succeeded" and success["delivery.completed_at"] == NOW
    assert success["delivery.leased_by"] is None
    assert failure["attempt.outcome"] == "retry" and failure["attempt.response_headers"] is None
    assert failure["delivery.state"] == "pending" and failure["delivery.last_error_class"] == "connect"
    assert failure["delivery.next_attempt_at is set"]


def test_a_settle_by_a_worker_whose_lease_was_taken_over_leaves_the_delivery_alone(
    database: Database, way: str
) -> None:
    mine, other = _deliveries(database, 2)
    with database.session() as session:
        session.execute(
            update(Delivery).where(Delivery.id == mine.delivery_id).values(leased_by="someone-else")
        )

    _write(database, [mine, other])

    taken_over = _rows(database, mine.delivery_id)
    assert taken_over["attempt.outcome"] == "succeeded"  # its attempt row is completed all the same
    assert taken_over["delivery.leased_by"] == "someone-else"
    assert taken_over["delivery.state"] == "pending"
    assert _rows(database, other.delivery_id)["delivery.state"] == "succeeded"


def test_batches_smaller_than_min_rows_go_row_by_row(database: Database) -> None:
    """PostgreSQL would plan the one statement afresh each time: for a few rows, dearer than row by row."""
    with database.session() as session:
        assert not unnested.used_by(session, [None] * (unnested.MIN_ROWS - 1))
        assert unnested.used_by(session, [None] * unnested.MIN_ROWS)
