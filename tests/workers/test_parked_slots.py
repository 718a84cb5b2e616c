"""Parked receiver slots against a real Redis: a slot whose send was answered is kept for PARK_S for this
process's next send to the host, taken again without a round trip, then given back; it still counts toward
the host's cap everywhere, and the answer it had still reaches the circuit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

from workers import cluster
from workers.cluster import PARK_S, ClusterSlots


def _slots(client: redis.Redis, per_host: int = 2) -> ClusterSlots:
    return ClusterSlots(client, per_host=per_host, trip_after_timeouts=3, send_s=10)


def _eventually(condition: Callable[[], object], timeout_s: float = 3) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def _token(answer: tuple[str | None, int] | None) -> str:
    assert answer is not None and answer[0] is not None, answer
    return answer[0]


def test_an_answered_slot_is_parked_and_taken_again_without_a_round_trip(redis_url: str) -> None:
    client = cluster.connect(redis_url)
    slots = _slots(client)
    host = "park-reuse.example"
    try:
        token = _token(slots.acquire(host))
        learned: list[int] = []
        slots.release(host, token, "answer", answered_before=False, then=learned.append)
        assert learned == [0]  # at once: it has just answered
        assert slots.parked(host) == 1
        assert client.zrange(cluster.slot_key(host), 0, -1) == [token.encode()]  # still held in Redis

        answers: list[tuple[tuple[str | None, int] | None, str]] = []
        slots.acquire_then(host, lambda answer: answers.append((answer, threading.current_thread().name)))
        # Answered in the caller's thread, not the courier's: no call went to Redis.
        assert answers == [((token, 0), threading.current_thread().name)]
        assert slots.parked(host) == 0
        assert slots.hand_on(token)  # held and renewed like any slot taken from Redis
    finally:
        slots.close()
    _eventually(lambda: not client.exists(cluster.slot_key(host)))


def test_a_parked_slot_is_given_back_after_park_s(redis_url: str) -> None:
    client = cluster.connect(redis_url)
    slots = _slots(client)
    host = "park-expiry.example"
    try:
        token = _token(slots.acquire(host))
        parked_at = time.monotonic()
        slots.release(host, token, "answer", answered_before=False)
        _eventually(lambda: not client.exists(cluster.slot_key(host)))
        waited = time.monotonic() - parked_at
        assert PARK_S <= waited < PARK_S + 1.0
        assert slots.parked(host) == 0
        # Taken afresh from Redis afterwards: a new token.
        assert _token(slots.acquire(host)) != token
    finally:
        slots.close()


def test_a_timeout_or_an_unsent_request_is_given_back_at_once(redis_url: str) -> None:
    client = cluster.connect(redis_url)
    slots = _slots(client)
    host = "park-timeout.example"
    try:
        first, second = _token(slots.acquire(host)), _token(slots.acquire(host))
        counted: list[int] = []
        slots.release(host, first, "timeout", answered_before=False, then=counted.append)
        slots.release(host, second, "unsent", answered_before=False)
        assert slots.parked(host) == 0
        _eventually(lambda: counted == [1])  # the circuit heard of the timeout
        assert client.zcard(cluster.slot_key(host)) == 0
    finally:
        slots.close()


def test_a_parked_slot_counts_toward_the_cap_of_every_process(redis_url: str) -> None:
    client = cluster.connect(redis_url)
    mine, other = _slots(client, per_host=4), _slots(cluster.connect(redis_url), per_host=4)
    host = "park-cap.example"
    try:
        tokens = [_token(mine.acquire(host)), _token(mine.acquire(host))]
        for token in tokens:
            mine.release(host, token, "answer", answered_before=False)
        assert mine.parked(host) == 2
        for _ in range(2):
            _token(other.acquire(host))
        assert other.acquire(host) == (None, 0)  # the cap of 4 is held, two by slots with no send on them
        _eventually(lambda: mine.parked(host) == 0)
        _token(other.acquire(host))  # given back within PARK_S: the other process takes one
    finally:
        mine.close()
        other.close()


def test_a_reused_slot_tells_the_circuit_of_the_answer_it_had(redis_url: str) -> None:
    """Its answer was not reported when it was parked: a timeout on its next send counts from 1, not on top
    of timeouts counted before that answer."""
    client = cluster.connect(redis_url)
    slots = _slots(client, per_host=4)
    host = "park-circuit.example"
    client.set(cluster.timeouts_key(host), 2)  # two timeouts in a row, seen by some process
    try:
        token = _token(slots.acquire(host))
        slots.release(host, token, "answer", answered_before=False)
        assert client.get(cluster.timeouts_key(host)) == b"2"  # parked: Redis has not heard of it yet
        assert _token(slots.acquire(host)) == token
        counted: list[int] = []
        slots.release(host, token, "timeout", answered_before=False, then=counted.append)
        _eventually(lambda: counted == [1])
    finally:
        slots.close()


def test_a_parked_slot_given_back_clears_the_timeouts_it_answered_after(redis_url: str) -> None:
    client = cluster.connect(redis_url)
    slots = _slots(client)
    host = "park-clear.example"
    client.set(cluster.timeouts_key(host), 2)
    try:
        token = _token(slots.acquire(host))
        slots.release(host, token, "answer", answered_before=False)
        _eventually(lambda: not client.exists(cluster.timeouts_key(host)))
        assert not client.exists(cluster.slot_key(host))
    finally:
        slots.close()


def test_closing_gives_back_the_parked_slots_at_once(redis_url: str) -> None:
    client = cluster.connect(redis_url)
    slots = _slots(client)
    host = "park-close.example"
    token = _token(slots.acquire(host))
    slots.release(host, token, "answer", answered_before=False)
    closed_at = time.monotonic()
    slots.close()
    assert client.zcard(cluster.slot_key(host)) == 0  # the courier sent the give-back before it stopped
    assert time.monotonic() - closed_at < PARK_S + 0.5


def test_a_slot_taken_on_a_crowded_host_is_given_back_at_once(redis_url: str) -> None:
    """More than half the host's slots were taken when it was: other processes may be waiting for it."""
    client = cluster.connect(redis_url)
    slots = _slots(client, per_host=4)
    host = "park-crowded.example"
    try:
        tokens = [_token(slots.acquire(host)) for _ in range(3)]  # 1 and 2 of 4 taken: room; 3 of 4: crowded
        learned: list[int] = []
        slots.release(host, tokens[2], "answer", answered_before=False, then=learned.append)
        assert slots.parked(host) == 0
        _eventually(lambda: learned == [0] and client.zcard(cluster.slot_key(host)) == 2)  # via Redis
        slots.release(host, tokens[1], "answer", answered_before=False)
        assert slots.parked(host) == 1
    finally:
        slots.close()


def test_a_stale_parked_slot_is_given_back_before_a_new_one_is_asked_for(redis_url: str) -> None:
    """Slots parked past PARK_S are given back before the call that asks Redis for one, on the same line,
    whether or not the renewer has got to them yet."""
    client = cluster.connect(redis_url)
    slots = _slots(client, per_host=4)
    host = "park-stale.example"
    try:
        tokens = [_token(slots.acquire(host)), _token(slots.acquire(host))]
        for token in tokens:
            slots.release(host, token, "answer", answered_before=False)
        time.sleep(PARK_S + 0.02)
        fresh = _token(slots.acquire(host))
        assert fresh not in tokens
        assert client.zrange(cluster.slot_key(host), 0, -1) == [fresh.encode()]
    finally:
        slots.close()
