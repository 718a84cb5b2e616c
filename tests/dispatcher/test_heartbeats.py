"""Liveness as the console and /readyz read it: rq's worker registry and the pumps' heartbeats, real Redis."""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue, SimpleWorker
from rq.worker import WorkerStatus

from dispatcher import heartbeats
from dispatcher.heartbeats import PUMPS_KEY, PumpHeartbeat
from dispatcher.queueing import LANES


def _registered_worker(client: redis.Redis, *queues: str) -> SimpleWorker:
    worker = SimpleWorker([Queue(name, connection=client) for name in queues], connection=client)
    worker.register_birth()
    worker.set_state(WorkerStatus.IDLE)  # as it does when it starts waiting for a job
    return worker


def test_with_nothing_running_no_worker_and_no_pump_is_alive(redis_client: redis.Redis) -> None:
    assert heartbeats.read(redis_client) == heartbeats.Liveness(workers=[], pumps=[])


def test_a_pump_heartbeat_is_read_back_with_its_host_pid_and_last_pass(redis_client: redis.Redis) -> None:
    beat = PumpHeartbeat(redis_client, ttl_s=30)
    before = datetime.now(UTC)

    beat.beat(passed=True)

    [pump] = heartbeats.read(redis_client).pumps
    assert (pump.name, pump.host, pump.pid, pump.last_error) == (
        beat.name,
        socket.gethostname(),
        os.getpid(),
        None,
    )
    assert pump.last_pass_at is not None and pump.beat_at is not None
    assert before <= pump.last_pass_at <= pump.beat_at <= datetime.now(UTC)
    assert 0 < redis_client.ttl(beat.key) <= 30


def test_a_failed_pass_keeps_the_pump_alive_with_its_error_and_its_last_good_pass(
    redis_client: redis.Redis,
) -> None:
    beat = PumpHeartbeat(redis_client, ttl_s=30)
    beat.beat(passed=True)
    good = heartbeats.read(redis_client).pumps[0].last_pass_at

    beat.beat(passed=False, error="OperationalError")

    [pump] = heartbeats.read(redis_client).pumps
    assert (pump.last_error, pump.last_pass_at) == ("OperationalError", good)
    assert pump.age_s(datetime.now(UTC)) is not None
    assert pump.pass_age_s(pump.beat_at + timedelta(seconds=5)) >= 5  # type: ignore[operator]


def test_a_pump_that_stops_cleanly_is_gone_at_once(redis_client: redis.Redis) -> None:
    beat = PumpHeartbeat(redis_client, ttl_s=30)
    beat.beat(passed=True)

    beat.stop()

    assert heartbeats.read(redis_client).pumps == []
    assert redis_client.scard(PUMPS_KEY) == 0


def test_a_pump_whose_heartbeat_expired_is_not_alive_and_leaves_the_set(redis_client: redis.Redis) -> None:
    dead, alive = PumpHeartbeat(redis_client, ttl_s=1), PumpHeartbeat(redis_client, ttl_s=30)
    dead.beat(passed=True)
    alive.beat(passed=True)

    time.sleep(1.3)

    assert [pump.name for pump in heartbeats.read(redis_client).pumps] == [alive.name]
    assert redis_client.smembers(PUMPS_KEY) == {alive.name.encode()}


def test_workers_of_our_queues_are_listed_with_host_pid_queues_state_and_heartbeat(
    redis_client: redis.Redis,
) -> None:
    ours = _registered_worker(redis_client, *LANES)
    _registered_worker(redis_client, "someone-elses-queue")

    [worker] = heartbeats.read(redis_client).workers

    assert (worker.name, worker.host, worker.pid, worker.queues) == (
        ours.name,
        socket.gethostname(),
        os.getpid(),
        LANES,
    )
    assert worker.state == "idle"
    age = worker.age_s(datetime.now(UTC))
    assert age is not None and 0 <= age < 10


def test_a_worker_that_registered_its_death_is_not_alive(redis_client: redis.Redis) -> None:
    worker = _registered_worker(redis_client, LANES[0])

    worker.register_death()

    assert heartbeats.read(redis_client).workers == []
