"""Replay: one delivery re-opened from the log, or every failed delivery matching a filter, as a job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from dispatcher.db import Database
from dispatcher.replay import ReplayError, ReplayFilter, enqueue_bulk_replay, reopen_delivery
from tests.workers.conftest import (
    Receiver,
    Reply,
    attempt_rows,
    delivery_row,
    make_delivery,
    make_engine,
    send_now,
    work_burst,
    worker_env,
)


def test_a_failed_delivery_is_reopened_keeping_its_attempts_and_sent_again(
    database: Database, receiver: Receiver
) -> None:
    receiver.script["/pb"] = [Reply(404), Reply(200)]
    delivery_id, _ = make_delivery(database, receiver.url("/pb?n=#attempt#"))
    engine = make_engine(database)
    send_now(engine, delivery_id)
    assert delivery_row(database, delivery_id).state == "failed"

    with database.session() as session:
        reopen_delivery(session, delivery_id)
    reopened = delivery_row(database, delivery_id)
    send_now(engine, delivery_id)
    engine.close()

    assert (reopened.state, reopened.queued_at, reopened.completed_at) == ("pending", None, None)
    assert [a.outcome for a in attempt_rows(database, delivery_id)] == ["failed", "succeeded"]
    assert [h.path for h in receiver.hits("/pb")] == ["/pb?n=1", "/pb?n=2"]


def test_a_pending_or_unknown_delivery_cannot_be_replayed(database: Database) -> None:
    delivery_id, _ = make_delivery(database, "http://127.0.0.1:9/pb")

    with pytest.raises(ReplayError, match="still pending"), database.session() as session:
        reopen_delivery(session, delivery_id)
    with pytest.raises(ReplayError, match="does not exist"), database.session() as session:
        reopen_delivery(session, 999_999)


def test_a_replayed_delivery_gets_the_whole_retry_schedule_again(
    database: Database, receiver: Receiver
) -> None:
    receiver.script["/down"] = [Reply(503)]
    delivery_id, _ = make_delivery(database, receiver.url("/down"))
    engine = make_engine(database)
    for _ in range(4):
        _due(database, delivery_id)
        send_now(engine, delivery_id)
    assert delivery_row(database, delivery_id).state == "failed"

    with database.session() as session:
        reopen_delivery(session, delivery_id)
    send_now(engine, delivery_id)
    engine.close()

    row = delivery_row(database, delivery_id)
    assert (row.state, row.attempt_count, row.replayed_after_attempts) == ("pending", 5, 4)


def test_a_bulk_replay_job_reopens_only_matching_failures_and_sends_them(
    database: Database, redis_url: str, redis_client: redis.Redis, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script["/a"] = [Reply(404), Reply(200)]
    receiver.script["/b"] = [Reply(404)]
    wanted, wanted_postback = make_delivery(database, receiver.url("/a"))
    other, _ = make_delivery(database, receiver.url("/b"))
    engine = make_engine(database)
    send_now(engine, wanted, other)
    engine.close()

    since = datetime.now(UTC) - timedelta(minutes=5)
    enqueue_bulk_replay(redis_client, ReplayFilter(since=since, postback_id=wanted_postback, status_code=404))
    env = worker_env(database.url, redis_url, tmp_path)
    work_burst(env)  # runs the replay job, which queues the send
    work_burst(env)

    assert delivery_row(database, wanted).state == "succeeded"
    assert delivery_row(database, other).state == "failed"
    assert len(receiver.hits("/b")) == 1


def _due(database: Database, delivery_id: int) -> None:
    from sqlalchemy import update

    from dispatcher.models import Delivery

    with database.session() as session:
        session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(next_attempt_at=datetime.now(UTC))
        )
