"""The slots' courier against a real Redis: a batch of calls is one round trip, each call gets its own reply,
and a call Redis refuses does not take the others' replies with it."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from workers import cluster
from workers.cluster import ClusterSlots


def _slots(client: redis.Redis) -> ClusterSlots:
    return ClusterSlots(client, per_host=2, trip_after_timeouts=3, send_s=10)


def _acquire_call(host: str, token: str) -> tuple[str | int, ...]:
    keys = (
        cluster.slot_key(host),
        cluster.timeouts_key(host),
        cluster.silent_key(host),
        cluster.wanted_key(host),
    )
    return ("EVAL", cluster._ACQUIRE, len(keys), *keys, token, 2, 3, 10_000, "process", cluster.WANTED_MS)


def test_a_refused_call_gets_its_error_and_the_others_their_answers(redis_url: str) -> None:
    client = cluster.connect(redis_url)
    client.set(cluster.slot_key("broken.example"), "not a sorted set")  # the script's ZREMRANGEBYSCORE fails
    courier = cluster._Courier(client)
    try:
        good, bad = _acquire_call("ok.example", "a"), _acquire_call("broken.example", "b")
        replies = courier._round_trip([good, bad, good])
    finally:
        courier.close()
    assert replies[0] == [1, 0, 1, 0]  # taken, no timeouts, 1 slot of the host taken, (silent: not asked)
    assert isinstance(replies[1], redis.ResponseError)
    assert "WRONGTYPE" in str(replies[1])
    assert replies[2] == [1, 0, 1, 0]  # the same token again: still one member, still under the cap
    assert client.zcard(cluster.slot_key("ok.example")) == 1


def test_slots_are_taken_up_to_the_cap_and_given_back(redis_url: str) -> None:
    client = cluster.connect(redis_url)
    slots = _slots(client)
    try:
        first = slots.acquire("cap.example")
        second = slots.acquire("cap.example")
        third = slots.acquire("cap.example")
        assert first is not None and first[0] is not None
        assert second is not None and second[0] is not None
        assert third == (None, 0)  # the cap of 2 is reached
        given_back: list[int] = []
        # "unsent": given back to Redis (an answered one would be parked, see test_parked_slots)
        slots.release("cap.example", first[0], "unsent", answered_before=False, then=given_back.append)
        again = slots.acquire("cap.example")  # the courier keeps order: the release went first
        assert again is not None and again[0] is not None
        assert given_back == [0]
    finally:
        slots.close()


def test_redis_unreachable_answers_every_call_with_the_error(redis_url: str) -> None:
    client = cluster.connect("redis://127.0.0.1:1/0")  # nothing listens on port 1
    courier = cluster._Courier(client)
    try:
        replies = courier._round_trip([("PING",), ("PING",)])
    finally:
        courier.close()
    assert len(replies) == 2
    assert all(isinstance(reply, redis.ConnectionError) for reply in replies)


def test_a_round_trip_that_times_out_is_not_run_again(redis_url: str) -> None:
    """A retried pipeline would run its scripts twice: a timeout counted twice, a slot taken twice."""
    client = cluster.connect(redis_url)  # its socket timeout is 1 s
    slow_count = (
        "EVAL",
        "redis.call('INCR', KEYS[1]) local t = redis.call('TIME') local stop = t[1] + 2 "
        "while tonumber(redis.call('TIME')[1]) < stop do end return 1",
        1,
        "courier:runs",
    )
    courier = cluster._Courier(client)
    try:
        [reply] = courier._round_trip([slow_count])
    finally:
        courier.close()
    assert isinstance(reply, redis.TimeoutError)
    time.sleep(2.5)  # the script holds the server until it ends
    assert redis.Redis.from_url(redis_url).get("courier:runs") == b"1"


def test_a_slot_freed_while_another_process_waits_for_one_goes_to_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its holder's next ask, in the same round trip as the slot given back, took it every time before."""
    monkeypatch.setattr(cluster, "WANTED_MS", 10_000)  # the waiter does not ask again here: it stays first
    client = cluster.connect(redis_url)
    mine, other = _slots(cluster.connect(redis_url)), _slots(cluster.connect(redis_url))
    host = f"{uuid.uuid4().hex[:8]}.example"
    try:
        first, second = mine.acquire(host), mine.acquire(host)
        assert first is not None and first[0] is not None and second is not None and second[0] is not None
        assert other.acquire(host) == (None, 0)  # the cap of 2 is held: it waits
        assert client.get(cluster.wanted_key(host)) is not None

        mine.release(host, first[0], "unsent", answered_before=False)
        assert mine.acquire(host) == (None, 0)  # freed, but the other process waits for it
        taken = other.acquire(host)
        assert taken is not None and taken[0] is not None
        assert not client.exists(cluster.wanted_key(host))  # served: the next one freed is anyone's

        mine.release(host, second[0], "unsent", answered_before=False)
        again = mine.acquire(host)
        assert again is not None and again[0] is not None
    finally:
        mine.close()
        other.close()


def test_acquire_then_answers_in_the_couriers_thread_without_a_waiting_caller(redis_url: str) -> None:
    client = cluster.connect(redis_url)
    slots = _slots(client)
    answers: list[tuple[tuple[str | None, int] | None, str]] = []
    answered = threading.Event()

    def then(answer: tuple[str | None, int] | None) -> None:
        answers.append((answer, threading.current_thread().name))
        if len(answers) == 3:
            answered.set()

    try:
        for _ in range(3):
            slots.acquire_then("cap.example", then)
        assert answered.wait(5)
        taken = [answer for answer, _ in answers if answer is not None and answer[0] is not None]
        assert len(taken) == 2  # the cap of 2
        assert (None, 0) in [answer for answer, _ in answers]
        assert {name for _, name in answers} == {"slots-redis"}
        assert client.zcard(cluster.slot_key("cap.example")) == 2
        # A slot taken this way is this process's like any other: renewed, handed on, given back.
        token = taken[0][0]
        assert token is not None and slots.hand_on(token)
    finally:
        slots.close()


def test_acquire_then_answers_none_at_once_when_redis_is_unreachable_or_the_courier_closed(
    redis_url: str,
) -> None:
    unreachable = _slots(cluster.connect("redis://127.0.0.1:1/0"))
    try:
        assert unreachable.acquire("down.example") is None  # found down: the next calls are not sent
        answers: list[object] = []
        unreachable.acquire_then("down.example", answers.append)
        assert answers == [None]
    finally:
        unreachable.close()

    closed = _slots(cluster.connect(redis_url))
    closed.close()
    answers = []
    closed.acquire_then("closed.example", answers.append)
    assert answers == [None]
