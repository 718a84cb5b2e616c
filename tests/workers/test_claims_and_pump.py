"""Claims with leases, and the pump that hands due, lost and abandoned deliveries back to RQ."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue
from sqlalchemy import update

from dispatcher.db import Database
from dispatcher.models import Delivery
from dispatcher.queueing import FIRST_ATTEMPT_QUEUE, RETRY_QUEUE, enqueue_deliveries
from tests.workers.conftest import FAST, delivery_row, make_delivery
from workers import claims, pump

LATER = datetime.now(UTC) + timedelta(days=1)


def _set(database: Database, delivery_id: int, **values: object) -> None:
    with database.session() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


def _queued_ids(client: redis.Redis, name: str) -> list[int]:
    return sorted(i for job in Queue(name, connection=client).get_jobs() for i in job.args[0])


def test_two_claims_of_the_same_deliveries_never_overlap(database: Database) -> None:
    ids = [make_delivery(database, "http://127.0.0.1:9/pb")[0] for _ in range(6)]
    now = datetime.now(UTC)
    results: list[list[int]] = []

    def claim_all() -> None:
        with database.session() as session:
            results.append(
                [c.delivery_id for c in claims.claim(session, ids, token="t", lease_s=30, now=now)]
            )

    threads = [threading.Thread(target=claim_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(i for claimed in results for i in claimed) == sorted(ids)


def test_a_leased_delivery_is_claimed_again_only_after_its_lease_expires(database: Database) -> None:
    delivery_id, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    now = datetime.now(UTC)
    with database.session() as session:
        [first] = claims.claim(session, [delivery_id], token="dead-worker", lease_s=10, now=now)
    with database.session() as session:
        assert (
            claims.claim(session, [delivery_id], token="other", lease_s=10, now=now + timedelta(seconds=5))
            == []
        )
    with database.session() as session:
        [second] = claims.claim(
            session, [delivery_id], token="other", lease_s=10, now=now + timedelta(seconds=11)
        )

    assert (first.number, second.number) == (1, 2)
    assert delivery_row(database, delivery_id).leased_by == "other"


def test_the_pump_hands_due_retries_to_the_retry_lane_and_first_attempts_to_the_first(
    database: Database, redis_client: redis.Redis
) -> None:
    retry_id, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    first_id, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    _set(database, retry_id, attempt_count=1, queued_at=None)
    _set(database, first_id, queued_at=None)

    handed = pump.hand_out(database, redis_client, FAST)

    assert (handed.first, handed.retry) == (1, 1)
    assert _queued_ids(redis_client, FIRST_ATTEMPT_QUEUE) == [first_id]
    assert _queued_ids(redis_client, RETRY_QUEUE) == [retry_id]


def test_the_pump_leaves_alone_what_is_leased_not_due_finished_or_queued_recently(
    database: Database, redis_client: redis.Redis
) -> None:
    now = datetime.now(UTC)
    leased, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    not_due, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    done, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    fresh, _ = make_delivery(database, "http://127.0.0.1:9/pb")  # just created: its creator queued it
    _set(database, leased, queued_at=None, lease_expires_at=now + timedelta(seconds=30), leased_by="w")
    _set(database, not_due, queued_at=None, next_attempt_at=LATER)
    _set(database, done, queued_at=None, state="succeeded")

    assert pump.hand_out(database, redis_client, FAST, now=now).total == 0
    assert _queued_ids(redis_client, FIRST_ATTEMPT_QUEUE) == []
    assert delivery_row(database, fresh).queued_at is not None


def test_a_job_lost_with_redis_is_handed_out_again_once_its_queueing_is_stale(
    database: Database, redis_client: redis.Redis
) -> None:
    delivery_id, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    enqueue_deliveries(redis_client, [delivery_id])
    redis_client.flushall()
    later = datetime.now(UTC) + timedelta(seconds=FAST.rehand_after_s + 1)

    assert pump.hand_out(database, redis_client, FAST, now=later).first == 1
    assert _queued_ids(redis_client, FIRST_ATTEMPT_QUEUE) == [delivery_id]
    assert pump.hand_out(database, redis_client, FAST, now=later).total == 0  # idempotent: once per period


def test_an_expired_lease_of_a_dead_worker_goes_back_to_the_retry_lane(
    database: Database, redis_client: redis.Redis
) -> None:
    delivery_id, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    now = datetime.now(UTC)
    with database.session() as session:
        claims.claim(session, [delivery_id], token="killed", lease_s=3, now=now)

    assert pump.hand_out(database, redis_client, FAST, now=now + timedelta(seconds=1)).total == 0
    assert pump.hand_out(database, redis_client, FAST, now=now + timedelta(seconds=4)).retry == 1


def test_pumps_running_at_once_hand_each_delivery_out_once(
    database: Database, redis_client: redis.Redis
) -> None:
    ids = [make_delivery(database, "http://127.0.0.1:9/pb")[0] for _ in range(30)]
    for delivery_id in ids:
        _set(database, delivery_id, queued_at=None)
    # A long re-hand delay: on a loaded machine the passes may take longer than FAST's second, and a delivery
    # queued that long ago would rightly be handed out again.
    tuning = replace(FAST, pump_batch=7, rehand_after_s=60)
    counts: list[int] = []

    def run_pump() -> None:
        for _ in range(10):
            counts.append(pump.hand_out(database, redis_client, tuning).total)

    threads = [threading.Thread(target=run_pump) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == 30
    assert max(counts) <= 7
    assert _queued_ids(redis_client, FIRST_ATTEMPT_QUEUE) == sorted(ids)


def test_a_pass_hands_out_at_most_its_batch(database: Database, redis_client: redis.Redis) -> None:
    ids = [make_delivery(database, "http://127.0.0.1:9/pb")[0] for _ in range(12)]
    for delivery_id in ids:
        _set(database, delivery_id, queued_at=None)
    tuning = replace(FAST, pump_batch=5, rehand_after_s=60)

    passes = [pump.hand_out(database, redis_client, tuning).total for _ in range(4)]

    assert passes == [5, 5, 2, 0]


def test_a_claims_top_up_leases_at_most_what_it_asks_for(database: Database) -> None:
    asked, *others = [make_delivery(database, "http://127.0.0.1:9/pb")[0] for _ in range(10)]
    now = datetime.now(UTC)

    with database.session() as session:
        taken = claims.claim(session, [asked], token="t", lease_s=30, now=now, top_up=3)

    assert len(taken) == 4
    assert asked in [c.delivery_id for c in taken]


def test_enqueueing_the_same_batch_twice_makes_one_job(redis_client: redis.Redis) -> None:
    assert enqueue_deliveries(redis_client, [1, 2, 3]) == 1
    assert enqueue_deliveries(redis_client, [3, 2, 1]) == 0
    assert len(Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client)) == 1


def test_when_redis_is_down_the_pump_leaves_deliveries_for_its_next_pass(database: Database) -> None:
    delivery_id, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    _set(database, delivery_id, queued_at=None)
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)

    pump.run(database, down, FAST, once=True)

    assert delivery_row(database, delivery_id).queued_at is None


def test_a_batch_whose_job_was_started_by_a_worker_that_died_can_be_queued_again(
    redis_client: redis.Redis,
) -> None:
    enqueue_deliveries(redis_client, [7, 8])
    job = Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client).dequeue_any(
        [Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client)], None, connection=redis_client
    )
    assert job is not None
    redis_client.hset(f"rq:job:{job[0].id}", "status", "started")  # its worker was killed mid-job

    assert enqueue_deliveries(redis_client, [7, 8]) == 1


def test_a_queued_delivery_is_rehanded_sooner_when_its_lane_is_empty(
    database: Database, redis_client: redis.Redis
) -> None:
    tuning = replace(FAST, rehand_after_s=60)
    delivery_id, _ = make_delivery(database, "http://127.0.0.1:9/pb")
    enqueue_deliveries(redis_client, [delivery_id])
    soon = datetime.now(UTC) + timedelta(seconds=pump.EMPTY_LANE_REHAND_S + 1)

    assert pump.hand_out(database, redis_client, tuning, now=soon).total == 0  # its job is still waiting
    redis_client.flushall()
    assert pump.hand_out(database, redis_client, tuning, now=soon).first == 1  # the lane is empty: lost
