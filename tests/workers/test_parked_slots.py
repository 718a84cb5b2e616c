"""Parked receiver slots against a real Redis: a slot whose send was answered is kept for PARK_S for this
process's next send to the host, taken again without a round trip, then given back; it still counts toward
the host's cap everywhere, and the answer it had still reaches the circuit.

Tests that need a slot to stay parked across a few round trips park it for 5 s (PARK_S is read when used),
so that a stalled machine cannot give it back under them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from workers import cluster
from workers.cluster import ClusterSlots

MakeSlots = Callable[..., ClusterSlots]


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    """For looking at Redis; each `ClusterSlots` (a worker process) has a client of its own."""
    return cluster.connect(redis_url)


@pytest.fixture
def make_slots(redis_url: str) -> Iterator[MakeSlots]:
    """A process's slots, closed after the test (closing twice is harmless)."""
    made: list[ClusterSlots] = []

    def make(per_host: int = 2) -> ClusterSlots:
        made.append(
            ClusterSlots(cluster.connect(redis_url), per_host=per_host, trip_after_timeouts=3, send_s=10)
        )
        return made[-1]

    yield make
    for slots in made:
        slots.close()


def _eventually(condition: Callable[[], object], timeout_s: float = 3) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def _absent(client: redis.Redis, key: str) -> Callable[[], bool]:
    return lambda: not client.exists(key)


def _token(answer: tuple[str | None, int] | None) -> str:
    assert answer is not None and answer[0] is not None, answer
    return answer[0]


def _parked(slots: cluster.ClusterSlots, host: str) -> str:
    """A slot taken for `host` and answered: parked (unless the host was crowded or had timeouts)."""
    token = _token(slots.acquire(host))
    slots.release(host, token, "answer", answered_before=False)
    return token


@pytest.fixture
def long_parking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "PARK_S", 5.0)


@pytest.mark.usefixtures("long_parking")
def test_an_answered_slot_is_parked_and_taken_again_without_a_round_trip(
    client: redis.Redis, make_slots: MakeSlots
) -> None:
    slots = make_slots()
    host = "park-reuse.example"
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
    slots.release(host, token, "unsent", answered_before=False)
    _eventually(_absent(client, cluster.slot_key(host)))


@pytest.mark.usefixtures("long_parking")
def test_a_slot_taken_from_redis_more_than_hand_on_for_s_ago_is_not_parked(
    client: redis.Redis, make_slots: MakeSlots, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It goes back through Redis as a slot handed on that long does: parked, its process's next send took it
    straight back, and a process waiting for the host never got it."""
    monkeypatch.setattr(cluster, "HAND_ON_FOR_S", 0.2)
    slots = make_slots()
    host = "park-old.example"
    token = _token(slots.acquire(host))
    time.sleep(0.3)
    slots.release(host, token, "answer", answered_before=False)
    assert slots.parked(host) == 0
    _eventually(_absent(client, cluster.slot_key(host)))


def test_a_parked_slot_is_given_back_after_park_s(client: redis.Redis, make_slots: MakeSlots) -> None:
    slots = make_slots()
    host = "park-expiry.example"
    token = _token(slots.acquire(host))
    parked_at = time.monotonic()
    slots.release(host, token, "answer", answered_before=False)
    _eventually(_absent(client, cluster.slot_key(host)))
    assert time.monotonic() - parked_at >= cluster.PARK_S
    assert slots.parked(host) == 0
    assert _token(slots.acquire(host)) != token  # taken afresh from Redis afterwards: a new token


def test_a_timeout_or_an_unsent_request_is_given_back_at_once(
    client: redis.Redis, make_slots: MakeSlots
) -> None:
    slots = make_slots()
    host = "park-timeout.example"
    first, second = _token(slots.acquire(host)), _token(slots.acquire(host))
    counted: list[int] = []
    slots.release(host, first, "timeout", answered_before=False, then=counted.append)
    slots.release(host, second, "unsent", answered_before=False)
    assert slots.parked(host) == 0
    _eventually(lambda: counted == [1])  # the circuit heard of the timeout
    assert client.zcard(cluster.slot_key(host)) == 0


@pytest.mark.usefixtures("long_parking")
def test_a_parked_slot_counts_toward_the_cap_of_every_process(make_slots: MakeSlots) -> None:
    mine, other = make_slots(4), make_slots(4)
    host = "park-cap.example"
    tokens = [_token(mine.acquire(host)), _token(mine.acquire(host))]
    for token in tokens:
        mine.release(host, token, "answer", answered_before=False)
    assert mine.parked(host) == 2
    for _ in range(2):
        _token(other.acquire(host))
    assert other.acquire(host) == (None, 0)  # the cap of 4 is held, two by slots with no send on them


@pytest.mark.usefixtures("long_parking")
def test_a_reused_slots_timeout_counts_on_top_of_timeouts_since_its_answer(
    client: redis.Redis, make_slots: MakeSlots
) -> None:
    """Its answer was kept from the circuit while parked; reporting it with this timeout would wipe the
    timeouts other processes counted since (a host that answered, then stopped)."""
    slots = make_slots(4)
    host = "park-circuit.example"
    token = _parked(slots, host)
    client.set(cluster.timeouts_key(host), 2)  # two timeouts elsewhere, after this answer
    assert _token(slots.acquire(host)) == token
    counted: list[int] = []
    slots.release(host, token, "timeout", answered_before=False, then=counted.append)
    _eventually(lambda: counted == [3])  # tripped, as it would have been without parking


def test_a_parked_slot_given_back_leaves_later_timeouts_counted(
    client: redis.Redis, make_slots: MakeSlots
) -> None:
    slots = make_slots()
    host = "park-late-answer.example"
    _parked(slots, host)
    client.set(cluster.timeouts_key(host), 1)  # a timeout elsewhere, after this answer
    _eventually(_absent(client, cluster.slot_key(host)))
    assert client.get(cluster.timeouts_key(host)) == b"1"  # the older answer did not wipe it


@pytest.mark.usefixtures("long_parking")
def test_a_host_seen_with_timeouts_takes_no_slot_from_parking(
    client: redis.Redis, make_slots: MakeSlots
) -> None:
    """This process's view of the circuit comes from Redis' counts: once a reply says the host has timeouts
    in a row, its parked slots are given back and the next send asks Redis (which tells the count)."""
    slots = make_slots(4)
    host = "park-timing-out.example"
    parked, other = _token(slots.acquire(host)), _token(slots.acquire(host))
    slots.release(host, parked, "answer", answered_before=False)
    assert slots.parked(host) == 1
    client.set(cluster.timeouts_key(host), 2)
    learned: list[int] = []
    slots.release(host, other, "unsent", answered_before=False, then=learned.append)
    _eventually(lambda: learned == [2])
    answer = slots.acquire(host)
    assert answer is not None and answer[0] not in (None, parked) and answer[1] == 2
    assert slots.parked(host) == 0
    assert client.zrange(cluster.slot_key(host), 0, -1) == [str(answer[0]).encode()]


@pytest.mark.usefixtures("long_parking")
def test_a_slot_taken_while_the_host_had_timeouts_is_not_parked(
    client: redis.Redis, make_slots: MakeSlots
) -> None:
    """Its answer goes to the circuit at once: a tripped host (one slot in the whole cluster) gets its other
    slots back at its first answer, as before parking existed; so does a host with fewer timeouts."""
    slots, other = make_slots(4), make_slots(4)
    for host, timeouts in (("park-tripped.example", 3), ("park-one-timeout.example", 1)):
        client.set(cluster.timeouts_key(host), timeouts)
        answer = slots.acquire(host)
        assert answer is not None and answer[1] == timeouts
        if timeouts == 3:
            assert other.acquire(host) == (None, 3)  # tripped: one slot
        slots.release(host, _token(answer), "answer", answered_before=False)
        assert slots.parked(host) == 0
        _eventually(_absent(client, cluster.timeouts_key(host)))
        assert _token(other.acquire(host)) and _token(other.acquire(host))


@pytest.mark.usefixtures("long_parking")
def test_a_slot_taken_on_a_crowded_host_is_given_back_at_once(
    client: redis.Redis, make_slots: MakeSlots
) -> None:
    """More than half the host's slots were taken when it was: other processes may be waiting for it."""
    slots = make_slots(4)
    host = "park-crowded.example"
    tokens = [_token(slots.acquire(host)) for _ in range(3)]  # 1 and 2 of 4 taken: room; 3 of 4: crowded
    learned: list[int] = []
    slots.release(host, tokens[2], "answer", answered_before=False, then=learned.append)
    assert slots.parked(host) == 0
    _eventually(lambda: learned == [0] and client.zcard(cluster.slot_key(host)) == 2)  # via Redis
    slots.release(host, tokens[1], "answer", answered_before=False)
    assert slots.parked(host) == 1


@pytest.mark.usefixtures("long_parking")
def test_a_slot_reused_for_long_is_given_back_and_its_answer_reported(
    client: redis.Redis, make_slots: MakeSlots, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "REPORT_AFTER_S", 1.0)
    slots = make_slots(4)
    host = "park-report.example"
    token = _token(slots.acquire(host))
    slots.release(host, token, "answer", answered_before=False)  # parked: its answer not reported
    client.set(cluster.timeouts_key(host), 2)
    assert _token(slots.acquire(host)) == token
    slots.release(host, token, "answer", answered_before=False)  # within REPORT_AFTER_S: parked again
    assert slots.parked(host) == 1
    assert _token(slots.acquire(host)) == token
    time.sleep(1.1)
    slots.release(host, token, "answer", answered_before=False)
    assert slots.parked(host) == 0
    _eventually(_absent(client, cluster.timeouts_key(host)))  # the answer reached the circuit
    assert client.zcard(cluster.slot_key(host)) == 0


@pytest.mark.usefixtures("long_parking")
def test_closing_gives_back_the_parked_slots_at_once(client: redis.Redis, make_slots: MakeSlots) -> None:
    slots = make_slots()
    host = "park-close.example"
    _parked(slots, host)
    slots.close()
    assert client.zcard(cluster.slot_key(host)) == 0  # the courier sent the give-back before it stopped


def test_a_stale_parked_slot_is_given_back_before_a_new_one_is_asked_for(
    client: redis.Redis, make_slots: MakeSlots, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slots parked past PARK_S are given back before the call that asks Redis for one, on the same line,
    even when the renewer (stopped here) has not got to them."""
    monkeypatch.setattr(ClusterSlots, "_renew_forever", lambda self: None)
    slots = make_slots(4)
    host = "park-stale.example"
    tokens = [_token(slots.acquire(host)), _token(slots.acquire(host))]
    for token in tokens:
        slots.release(host, token, "answer", answered_before=False)
    time.sleep(cluster.PARK_S + 0.05)
    assert client.zcard(cluster.slot_key(host)) == 2  # nobody gave them back yet
    fresh = _token(slots.acquire(host))
    assert fresh not in tokens
    assert client.zrange(cluster.slot_key(host), 0, -1) == [fresh.encode()]
