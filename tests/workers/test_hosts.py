"""Per-host slots: a line for a host that answers, none for one that has stopped, one slot once tripped; with
Redis, the same caps and circuit across processes (two `HostSlots` with clients of their own stand for two
worker processes here; tests/workers/test_cluster_caps.py runs real ones)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import redis

from workers import cluster, hosts
from workers.cluster import ClusterSlots
from workers.hosts import Admission, HostSlots, Slot

FAR = 1e12
T = TypeVar("T")
HOST = "receiver.example:8080"
STARTED, WAITING, REFUSED = Admission.STARTED, Admission.WAITING, Admission.REFUSED


def noop() -> None:
    pass


class Held:
    """The slots handed to started sends, in order, with when each started."""

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self.started_at: list[float] = []
        self._changed = threading.Condition()

    def run(self, slot: Slot) -> None:
        with self._changed:
            self.slots.append(slot)
            self.started_at.append(time.monotonic())
            self._changed.notify_all()

    def wait_for(self, count: int, timeout_s: float = 5) -> Slot:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.slots) >= count, timeout_s), (
                f"{len(self.slots)} of {count} sends started"
            )
            return self.slots[count - 1]


def local(per_host: int, trip_after: int = 3) -> HostSlots:
    return HostSlots(per_host=per_host, trip_after_timeouts=trip_after, executor=ThreadPoolExecutor(4))


def answered(slots: HostSlots, host: str, answer_s: float) -> None:
    """One send to `host` that got its answer in `answer_s`."""
    held = Held()
    assert slots.submit(host, FAR, held.run, noop) is STARTED
    held.wait_for(1).release(timed_out=False, answer_s=answer_s)


def test_beyond_its_slots_a_host_that_answers_gets_a_bounded_line() -> None:
    slots = local(per_host=2)
    answered(slots, "h", 0.01)
    taken = [slots.submit("h", FAR, Held().run, noop) for _ in range(2 + 2 * hosts.LINE_PER_SLOT + 1)]

    assert taken == [STARTED] * 2 + [WAITING] * 2 * hosts.LINE_PER_SLOT + [REFUSED]
    assert slots.busy("h") == 2


def test_a_new_host_gets_a_full_line_until_it_stalls() -> None:
    slots = local(per_host=2)

    taken = [slots.submit("h", FAR, Held().run, noop) for _ in range(2 + 2 * hosts.LINE_PER_SLOT + 1)]

    assert taken == [STARTED] * 2 + [WAITING] * 2 * hosts.LINE_PER_SLOT + [REFUSED]


@pytest.fixture
def peers_margin(monkeypatch: pytest.MonkeyPatch) -> float:
    """SLOWER_THAN_PEERS_S long enough that the thread hand-offs of a loaded machine stay well inside it."""
    monkeypatch.setattr(hosts, "SLOWER_THAN_PEERS_S", 0.5)
    return 0.5


def test_a_new_host_silent_while_later_sends_elsewhere_are_answered_keeps_one_round_in_line(
    peers_margin: float,
) -> None:
    slots = local(per_host=1)
    quiet = Held()
    assert slots.submit("quiet", FAR, quiet.run, noop) is STARTED
    first = quiet.wait_for(1)
    answered(slots, "fast", 0.01)  # started with it: says nothing of it
    assert [slots.submit("quiet", FAR, quiet.run, noop) for _ in range(2)] == [WAITING, WAITING]

    time.sleep(peers_margin + 0.05)
    answered(slots, "fast", 0.01)  # started well after it, and answered first

    assert slots.submit("quiet", FAR, quiet.run, noop) is REFUSED  # it holds one round (1 slot) and more
    assert [slots.submit("fast", FAR, Held().run, noop) for _ in range(3)] == [STARTED, WAITING, WAITING]
    first.release(timed_out=False, answer_s=0.3)  # it answers: a slow host, not a dead one
    quiet.wait_for(2)
    assert slots.submit("quiet", FAR, quiet.run, noop) is WAITING


def test_a_new_host_whose_line_was_shortened_gets_it_back_after_an_idle_spell(peers_margin: float) -> None:
    slots = local(per_host=1)
    quiet = Held()
    assert slots.submit("quiet", FAR, quiet.run, noop) is STARTED
    time.sleep(peers_margin + 0.05)
    answered(slots, "fast", 0.01)
    assert [slots.submit("quiet", FAR, quiet.run, noop) for _ in range(2)] == [WAITING, REFUSED]
    quiet.wait_for(1).release(timed_out=False, sent=False)  # its job was rolled back: nothing left
    quiet.wait_for(2).release(timed_out=False, sent=False)

    # Idle again: what its unsent first send started says nothing of it.
    assert [slots.submit("quiet", FAR, quiet.run, noop) for _ in range(3)] == [STARTED, WAITING, WAITING]


def test_a_send_handed_a_slot_counts_from_when_it_started_among_peers(peers_margin: float) -> None:
    slots = local(per_host=1)
    fast = Held()
    assert [slots.submit("fast", FAR, fast.run, noop) for _ in range(2)] == [STARTED, WAITING]
    quiet = Held()
    assert slots.submit("quiet", FAR, quiet.run, noop) is STARTED
    quiet.wait_for(1)
    time.sleep(peers_margin + 0.05)
    fast.wait_for(1).release(timed_out=False, answer_s=0.01)  # its slot goes to the one waiting, starting now
    fast.wait_for(2).release(timed_out=False, answer_s=0.01)

    assert [slots.submit("quiet", FAR, quiet.run, noop) for _ in range(2)] == [WAITING, REFUSED]


class Deferred(Executor):
    """Runs what is submitted only when told to (`run_all`), in the test's thread."""

    def __init__(self) -> None:
        self.tasks: list[Callable[[], object]] = []

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self.tasks.append(lambda: future.set_result(fn(*args, **kwargs)))
        return future

    def run_all(self) -> None:
        while self.tasks:
            self.tasks.pop(0)()


def test_a_send_handed_the_slot_of_one_too_late_to_start_counts_as_out_there() -> None:
    executor = Deferred()
    slots = HostSlots(per_host=1, trip_after_timeouts=3, executor=executor)
    assert slots.submit("h", time.monotonic() - 1, Held().run, noop) is STARTED  # too late once it runs
    held = Held()
    assert slots.submit("h", FAR, held.run, noop) is WAITING
    executor.run_all()  # the first stands down and hands its slot to the second, which goes out
    held.wait_for(1)
    time.sleep(hosts.STALL_S + 0.1)

    assert slots.stalled("h")  # out there for a second, unanswered: silent like any other


def test_a_slow_host_lines_up_only_what_can_start_before_its_start_by() -> None:
    slots = local(per_host=2)
    answered(slots, "slow", 2.0)
    start_by = time.monotonic() + 3  # time for one round of 2 s answers, not two

    taken = [slots.submit("slow", start_by, Held().run, noop) for _ in range(5)]

    assert taken == [STARTED, STARTED, WAITING, WAITING, REFUSED]


def test_a_host_idle_for_a_while_gets_a_line_again_for_a_burst() -> None:
    slots = local(per_host=2)
    answered(slots, "h", 0.01)
    time.sleep(hosts.STALL_S + 0.1)  # nothing asked of it meanwhile: not a silence

    taken = [slots.submit("h", FAR, Held().run, noop) for _ in range(5)]

    assert taken == [STARTED, STARTED, WAITING, WAITING, WAITING]
    assert not slots.stalled("h")


def test_a_host_that_stopped_answering_gets_no_line() -> None:
    slots = local(per_host=1)
    held = Held()
    assert slots.submit("h", FAR, held.run, noop)
    held.wait_for(1)  # its silence counts from when it went out
    time.sleep(hosts.STALL_S + 0.1)

    assert not slots.submit("h", FAR, Held().run, noop)
    assert slots.submit("other", FAR, Held().run, noop)  # its neighbours are not affected


def test_after_consecutive_timeouts_a_host_is_tripped_to_one_slot_until_it_answers() -> None:
    slots = local(per_host=4, trip_after=2)
    held = Held()
    for n in range(1, 3):
        assert slots.submit("h", FAR, held.run, noop)
        held.wait_for(n).release(timed_out=True)

    assert [slots.submit("h", FAR, held.run, noop) for _ in range(3)] == [STARTED, REFUSED, REFUSED]
    held.wait_for(3).release(timed_out=False)
    assert [slots.submit("h", FAR, held.run, noop) for _ in range(4)] == [STARTED] * 4


def test_a_finished_send_hands_its_slot_to_the_next_in_line() -> None:
    slots = local(per_host=1)
    held = Held()
    assert slots.submit("h", FAR, held.run, noop) and slots.submit("h", FAR, held.run, noop)
    first = held.wait_for(1)
    assert len(held.slots) == 1  # the second waits in line

    first.release(timed_out=False)

    assert held.wait_for(2) is first and slots.busy("h") == 1


def test_a_waiting_send_past_its_start_by_is_given_back() -> None:
    given_back: list[str] = []
    slots = local(per_host=1)
    slots.submit("h", FAR, Held().run, noop)
    slots.submit("h", time.monotonic() + 0.05, Held().run, lambda: given_back.append("late"))
    time.sleep(0.1)

    slots.expire()

    assert given_back == ["late"]


def test_a_tripped_or_silent_host_reports_itself_stalled() -> None:
    slots = local(per_host=1, trip_after=1)
    held = Held()
    assert slots.submit("h", FAR, held.run, noop)
    held.wait_for(1)  # its silence counts from when it went out
    assert not slots.stalled("h")
    time.sleep(hosts.STALL_S + 0.05)
    assert slots.stalled("h")
    held.wait_for(1).release(timed_out=True)

    assert slots.stalled("h") and not slots.stalled("never-seen")


# --- shared through Redis ---


@pytest.fixture
def connect(redis_url: str) -> Iterator[Callable[[], redis.Redis]]:
    """A Redis client of its own for each simulated process."""
    made: list[redis.Redis] = []

    def make() -> redis.Redis:
        made.append(redis.Redis.from_url(redis_url))
        return made[-1]

    yield make
    for client in made:
        client.close()


_processes: list[tuple[HostSlots, redis.Redis]] = []


@pytest.fixture(autouse=True)
def _close_processes() -> Iterator[None]:
    """A test's simulated processes stop at its end: their retry timers would go on asking for HOST's slots
    (and stand first in line for them) during the next test."""
    yield
    while _processes:
        slots, client = _processes.pop()
        slots.close()
        with contextlib.suppress(redis.RedisError):  # a test's client may stand for an unreachable Redis
            client.delete(cluster.wanted_key(HOST))


def shared(client: redis.Redis, per_host: int, trip_after: int = 3, send_s: float = 2) -> HostSlots:
    layer = ClusterSlots(client, per_host=per_host, trip_after_timeouts=trip_after, send_s=send_s)
    _processes.append((HostSlots(per_host, trip_after, ThreadPoolExecutor(4), layer), client))
    return _processes[-1][0]


@pytest.fixture
def long_hand_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slots may be handed on however long ago they were taken: these tests follow a lease over seconds."""
    monkeypatch.setattr(cluster, "HAND_ON_FOR_S", 3600.0)


def in_flight(client: redis.Redis) -> int:
    return int(client.zcard(cluster.slot_key(HOST)))


def eventually(condition: Callable[[], object], timeout_s: float = 2) -> None:
    """Slots are given back without waiting for Redis: what that changes there shows a moment later."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "Redis never showed it"
        time.sleep(0.005)


def test_processes_share_a_hosts_slots_and_a_freed_one_is_taken_elsewhere_within_the_retry_period(
    connect: Callable[[], redis.Redis],
) -> None:
    first, second = shared(connect(), per_host=2), shared(connect(), per_host=2)
    held_first, held_second = Held(), Held()
    for _ in range(2):
        assert first.submit(HOST, FAR, held_first.run, noop)
    held_first.wait_for(2)

    assert second.submit(HOST, FAR, held_second.run, noop)  # taken: it waits in line for the cluster
    time.sleep(0.3)
    assert held_second.slots == [] and in_flight(connect()) == 2

    freed_at = time.monotonic()
    held_first.slots[0].release(timed_out=False)
    held_second.wait_for(1)

    waited = held_second.started_at[0] - freed_at
    assert waited < hosts.RETRY_S + 0.25, waited  # the retry timer, not the send's start_by
    assert in_flight(connect()) == 2


def test_a_process_first_in_line_is_told_of_a_freed_slot_and_takes_it_at_once(
    connect: Callable[[], redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosts, "RETRY_S", 5.0)  # the retry timer would be far too late: only the news helps
    first, second = shared(connect(), per_host=1), shared(connect(), per_host=1)
    held_first, held_second = Held(), Held()
    assert first.submit(HOST, FAR, held_first.run, noop)
    held_first.wait_for(1)
    assert second.submit(HOST, FAR, held_second.run, noop)  # refused by the cluster: first in line
    time.sleep(0.3)
    assert held_second.slots == []

    freed_at = time.monotonic()
    held_first.slots[0].release(timed_out=False)
    held_second.wait_for(1)

    waited = held_second.started_at[0] - freed_at
    assert waited < 0.3, waited


def test_news_of_a_freed_slot_that_comes_before_the_refusal_it_answers_is_not_lost(
    connect: Callable[[], redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosts, "RETRY_S", 5.0)
    first, second = shared(connect(), per_host=1), shared(connect(), per_host=1)
    layer = second.cluster
    assert layer is not None
    held_first, held_second = Held(), Held()
    assert first.submit(HOST, FAR, held_first.run, noop)
    held_first.wait_for(1)
    # Second's first ask is refused by Redis, but its reply is held back until the slot has been freed and
    # the news of it heard: the order in which a busy process may take them.
    replies: list[Callable[[], None]] = []
    real_acquire_then = layer.acquire_then

    def late_reply(host: str, then: Callable[[tuple[str | None, int] | None], None]) -> None:
        if replies:
            real_acquire_then(host, then)
            return
        real_acquire_then(host, lambda answer: replies.append(lambda: then(answer)))

    monkeypatch.setattr(layer, "acquire_then", late_reply)
    assert second.submit(HOST, FAR, held_second.run, noop)
    eventually(lambda: bool(replies))
    held_first.slots[0].release(timed_out=False)  # freed: second is told while its ask is still out
    time.sleep(0.3)

    refused_at = time.monotonic()
    replies[0]()  # the refusal arrives after the news
    held_second.wait_for(1)

    assert held_second.started_at[0] - refused_at < 0.3  # asked again at once, not at the 5 s retry


def test_a_slot_freed_with_nobody_waiting_elsewhere_tells_no_one(redis_url: str) -> None:
    host = f"freed-{uuid.uuid4().hex[:8]}.example"  # a key of its own
    first, second = (
        ClusterSlots(cluster.connect(redis_url), per_host=1, trip_after_timeouts=3, send_s=2)
        for _ in range(2)
    )
    heard_first: list[str] = []
    heard_second: list[str] = []
    try:
        first.listen(heard_first.append)
        second.listen(heard_second.append)
        time.sleep(0.2)  # subscribed
        taken = first.acquire(host)
        assert taken is not None and taken[0] is not None
        assert second.acquire(host) == (None, 0)  # refused: second is first in line now

        first.release(host, taken[0], "answer", answered_before=False)
        eventually(lambda: heard_second == [host])
        again = second.acquire(host)  # taken: second no longer waits for it
        assert again is not None and again[0] is not None
        second.release(host, again[0], "answer", answered_before=False)
        time.sleep(0.3)

        assert heard_first == [] and heard_second == [host]
    finally:
        first.close()
        second.close()


def test_a_slot_handed_on_in_its_process_is_not_given_back_to_redis(
    connect: Callable[[], redis.Redis], long_hand_on: None
) -> None:
    client = connect()
    slots = shared(client, per_host=1)
    held = Held()
    assert slots.submit(HOST, FAR, held.run, noop) and slots.submit(HOST, FAR, held.run, noop)
    first = held.wait_for(1)
    token = first.token
    assert token is not None and client.zrange(cluster.slot_key(HOST), 0, -1) == [token.encode()]

    first.release(timed_out=False)

    second = held.wait_for(2)
    assert second.token == token and client.zrange(cluster.slot_key(HOST), 0, -1) == [token.encode()]
    second.release(timed_out=False)
    eventually(lambda: not client.exists(cluster.slot_key(HOST)))  # the last one out gives it back: no key


def test_a_slot_the_cluster_no_longer_holds_is_given_back_and_taken_afresh(
    connect: Callable[[], redis.Redis],
) -> None:
    client = connect()
    slots = shared(client, per_host=1)
    layer = slots.cluster
    assert layer is not None
    held = Held()
    assert slots.submit(HOST, FAR, held.run, noop) and slots.submit(HOST, FAR, held.run, noop)
    first = held.wait_for(1)
    token = first.token
    assert token is not None
    client.zrem(cluster.slot_key(HOST), token)  # it expired while Redis could not be reached
    layer.renew()
    eventually(lambda: not layer.hand_on(token))

    first.release(timed_out=False)

    second = held.wait_for(2)
    assert second is not first and second.token not in (None, token)
    eventually(lambda: in_flight(client) == 1)
    second.release(timed_out=False)
    slots.close()


def test_a_held_slot_is_renewed_past_its_lease_and_freed_soon_after_its_holder_stops_renewing(
    connect: Callable[[], redis.Redis],
) -> None:
    client = connect()
    host = f"lease-{uuid.uuid4().hex[:8]}.example"  # a key of its own
    holder = ClusterSlots(client, per_host=1, trip_after_timeouts=3, send_s=2)
    holder.lease_s, holder.renew_s = 0.6, 0.15
    answer = holder.acquire(host)
    assert answer is not None and answer[0] is not None
    other = ClusterSlots(connect(), per_host=1, trip_after_timeouts=3, send_s=2)

    time.sleep(3 * holder.lease_s)  # three leases: only the renewals keep it
    assert other.acquire(host) == (None, 0)
    ttl = client.pttl(cluster.slot_key(host))
    assert 0 < ttl <= 600, ttl

    holder.close()  # as a killed worker: no more renewals, and the slot is never given back
    stopped = time.monotonic()
    taken: tuple[str | None, int] | None = (None, 0)
    while taken == (None, 0) and time.monotonic() - stopped < 3:
        time.sleep(0.02)
        taken = other.acquire(host)
    assert taken is not None and taken[0] is not None
    assert time.monotonic() - stopped <= holder.lease_s + 0.3
    other.close()


def test_a_stuck_send_is_renewed_only_for_its_requests_time_and_a_margin(
    connect: Callable[[], redis.Redis], long_hand_on: None
) -> None:
    client = connect()
    host = f"lease-{uuid.uuid4().hex[:8]}.example"  # a key of its own
    holder = ClusterSlots(client, per_host=1, trip_after_timeouts=3, send_s=2)
    holder.lease_s, holder.renew_s, holder.renew_for_s = 1.0, 0.2, 2.0
    answer = holder.acquire(host)
    assert answer is not None and answer[0] is not None
    token = answer[0]
    time.sleep(1.5)
    assert client.zscore(cluster.slot_key(host), token) is not None  # renewed past its first lease
    assert holder.hand_on(token)  # handed on: renewed for a whole request again from here
    time.sleep(1.5)
    assert client.zscore(cluster.slot_key(host), token) is not None

    eventually(lambda: client.zscore(cluster.slot_key(host), token) is None, timeout_s=5)
    assert not holder.hand_on(token)  # renewals stopped: not handed on any more
    holder.close()


def lease_holder(redis_url: str) -> tuple[ClusterSlots, str, str, str]:
    """A layer with 1 s leases renewed every 0.2 s holding two slots on a host of its own."""
    holder = ClusterSlots(cluster.connect(redis_url), per_host=2, trip_after_timeouts=3, send_s=2)
    holder.lease_s, holder.renew_s = 1.0, 0.2
    host = f"lease-{uuid.uuid4().hex[:8]}.example"
    first, second = holder.acquire(host), holder.acquire(host)
    assert first is not None and first[0] is not None and second is not None and second[0] is not None
    return holder, host, first[0], second[0]


def test_a_slot_redis_cannot_confirm_is_not_handed_on_and_one_given_back_meanwhile_is_never_renewed(
    connect: Callable[[], redis.Redis], redis_url: str, long_hand_on: None
) -> None:
    client = connect()
    holder, host, kept, given_back = lease_holder(redis_url)
    assert holder.hand_on(kept)

    client.execute_command("CLIENT", "PAUSE", "800", "ALL")  # shorter than a lease: nothing expires
    time.sleep(0.6)
    assert not holder.hand_on(kept)  # not confirmed for long enough: it might lapse while in use
    holder.release(host, given_back, "answer", answered_before=False)

    eventually(lambda: holder.hand_on(kept), timeout_s=3)  # confirmed again once Redis answers
    eventually(lambda: client.zscore(cluster.slot_key(host), given_back) is None, timeout_s=3)
    time.sleep(holder.lease_s + 0.3)
    assert client.zscore(cluster.slot_key(host), given_back) is None  # given back: never renewed again
    assert client.zscore(cluster.slot_key(host), kept) is not None
    holder.close()


def test_a_lease_that_ran_out_while_redis_was_silent_is_lost_for_good(
    connect: Callable[[], redis.Redis], redis_url: str, long_hand_on: None
) -> None:
    client = connect()
    holder, host, kept, _ = lease_holder(redis_url)

    client.execute_command("CLIENT", "PAUSE", "1600", "ALL")  # longer than a lease
    time.sleep(2.5)

    eventually(lambda: client.zscore(cluster.slot_key(host), kept) is None, timeout_s=3)
    time.sleep(0.5)  # renewals go on for the slots still held, never for this one
    assert not holder.hand_on(kept) and client.zscore(cluster.slot_key(host), kept) is None
    holder.close()


def test_a_slot_expires_in_redis_when_its_holder_never_gives_it_back(
    connect: Callable[[], redis.Redis],
) -> None:
    client = connect()
    dead = ClusterSlots(client, per_host=1, trip_after_timeouts=3, send_s=0.5)
    dead.lease_s = 0.5
    answer = dead.acquire(HOST)
    assert answer is not None and answer[0] is not None
    token = answer[0]
    dead.close()  # its renewals stop, as when its process is killed
    assert 0 < client.pttl(cluster.slot_key(HOST)) <= 500  # the key goes with its last slot
    survivor = shared(connect(), per_host=1)
    held = Held()

    assert survivor.submit(HOST, FAR, held.run, noop)
    assert held.slots == []

    held.wait_for(1, timeout_s=2)
    assert held.slots[0].token not in (None, token)


def held_by_another(connect: Callable[[], redis.Redis]) -> tuple[HostSlots, HostSlots, str, Held]:
    """Two processes and a host of their own (2 slots), both of whose slots the first holds with sends out."""
    holder, waiter = shared(connect(), per_host=2), shared(connect(), per_host=2)
    host = f"{uuid.uuid4().hex[:8]}.example:8080"
    held = Held()
    for _ in range(2):
        assert holder.submit(host, FAR, held.run, noop)
    held.wait_for(2)
    return holder, waiter, host, held


def test_a_process_waiting_for_the_clusters_slots_does_not_take_the_host_for_silent(
    connect: Callable[[], redis.Redis],
) -> None:
    """With nothing of its own out there, its clock says nothing of the host. Judged by it, a process whose
    sends waited a second while another held every slot refused the host's deliveries and set them aside for
    seconds (bench.delivery: the last sales of a run arrived 1-3 s late, in about one run in four)."""
    _, waiter, host, held = held_by_another(connect)
    waiting = Held()
    assert waiter.submit(host, FAR, waiting.run, noop)  # refused by the cluster: first in its line
    time.sleep(hosts.STALL_S + 0.1)

    assert waiter.submit(host, FAR, waiting.run, noop) is WAITING
    assert not waiter.stalled(host)
    held.slots[0].release(timed_out=False, answer_s=0.01)
    waiting.wait_for(1)  # the retry timer took the freed slot


def test_a_host_silent_where_its_slots_are_held_is_refused_by_the_processes_waiting_for_one(
    connect: Callable[[], redis.Redis],
) -> None:
    client = connect()
    holder, waiter, host, held = held_by_another(connect)
    given_back: list[str] = []
    waiting = Held()
    assert waiter.submit(host, FAR, waiting.run, lambda: given_back.append("back"))
    time.sleep(hosts.STALL_S + 0.05)

    holder.expire()  # the engine's flusher calls it: the holder tells the cluster
    eventually(lambda: client.exists(cluster.silent_key(host)))
    eventually(lambda: given_back == ["back"])  # the waiter's next retry heard it: its line is given back
    assert waiter.stalled(host) and waiter.submit(host, FAR, waiting.run, noop) is REFUSED
    assert waiting.slots == []

    held.slots[0].release(timed_out=False, answer_s=0.01)  # it answers: everyone may send again
    eventually(lambda: not client.exists(cluster.silent_key(host)))
    time.sleep(hosts.STALL_S)
    assert waiter.submit(host, FAR, waiting.run, noop) is STARTED
    waiting.wait_for(1)


def test_a_process_waiting_for_a_slot_gets_one_while_the_holder_still_has_a_line(
    connect: Callable[[], redis.Redis],
) -> None:
    """The holder hands each freed slot to its next send only for HAND_ON_FOR_S; then the slot goes back
    through Redis, which keeps it for the process that waits. Before, a holder whose line never emptied kept
    every slot (bench.delivery: a healthy host's sends waited 2 s in the other process's line)."""
    holder, waiter = shared(connect(), per_host=1), shared(connect(), per_host=1)
    host = f"{uuid.uuid4().hex[:8]}.example:8080"
    held = Held()
    assert holder.submit(host, FAR, held.run, noop) is STARTED
    current = held.wait_for(1)
    waiting = Held()
    assert waiter.submit(host, FAR, waiting.run, noop)  # refused by the cluster: it waits
    began = time.monotonic()
    while not waiting.slots:
        assert time.monotonic() - began < 3, "the waiting process never got a slot"
        assert holder.submit(host, FAR, held.run, noop) is WAITING  # the holder's line never empties
        time.sleep(0.05)

        def handed_on_or_taken(before: int = len(held.slots)) -> bool:
            return len(held.slots) > before or bool(waiting.slots)

        current.release(timed_out=False, answer_s=0.05)
        eventually(handed_on_or_taken)
        current = held.slots[-1]

    assert waiting.started_at[0] - began < cluster.HAND_ON_FOR_S + 0.5
    assert held.slots.count(held.slots[0]) > 1  # it was handed on meanwhile, as before


def test_timeouts_seen_by_one_process_trip_the_host_for_another(connect: Callable[[], redis.Redis]) -> None:
    client = connect()
    seer, other = shared(connect(), per_host=4, trip_after=2), shared(connect(), per_host=4, trip_after=2)
    held = Held()
    for n in range(1, 3):
        assert seer.submit(HOST, FAR, held.run, noop)
        held.wait_for(n).release(timed_out=True)
    eventually(lambda: client.get(cluster.timeouts_key(HOST)) == b"2")
    assert 0 < client.ttl(cluster.timeouts_key(HOST)) <= cluster.CIRCUIT_MEMORY_S

    given_back: list[str] = []
    others = Held()
    taken = [other.submit(HOST, FAR, others.run, lambda: given_back.append("back")) for _ in range(3)]

    # The first sends start before the process knows; the cluster gives them one slot, the rest come back.
    others.wait_for(1)
    deadline = time.monotonic() + 5
    while len(given_back) + len(others.slots) < sum(map(bool, taken)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(others.slots) == 1 and len(given_back) == sum(map(bool, taken)) - 1
    assert other.stalled(HOST) and not other.submit(HOST, FAR, others.run, noop)  # tripped: no line

    others.slots[0].release(timed_out=False)  # an answer closes the circuit for everyone
    eventually(lambda: not client.exists(cluster.timeouts_key(HOST)))
    assert seer.submit(HOST, FAR, held.run, noop)  # its one slot: taking it, the process learns
    held.wait_for(3)
    assert not seer.stalled(HOST)
    assert [seer.submit(HOST, FAR, held.run, noop) for _ in range(3)] == [STARTED] * 3


def test_an_answer_handed_on_without_a_call_still_resets_the_circuit(
    connect: Callable[[], redis.Redis],
) -> None:
    client = connect()
    client.set(cluster.timeouts_key(HOST), 2)
    slots = shared(client, per_host=1, trip_after=3)
    held = Held()
    assert slots.submit(HOST, FAR, held.run, noop) and slots.submit(HOST, FAR, held.run, noop)
    held.wait_for(1).release(timed_out=False)  # answered, handed on: Redis not told yet

    held.wait_for(2).release(timed_out=True)

    # Reset by the answer, then this timeout (without the reset it would be 3).
    eventually(lambda: client.get(cluster.timeouts_key(HOST)) != b"2")
    assert client.get(cluster.timeouts_key(HOST)) == b"1"


def test_without_redis_the_caps_are_per_process_and_that_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = cluster.connect("redis://127.0.0.1:1/0")  # as the worker makes it; nothing listens
    slots = shared(unreachable, per_host=2)
    held = Held()
    caplog.set_level(logging.WARNING, logger="workers.cluster")

    started = [slots.submit(HOST, FAR, held.run, noop) for _ in range(5)]  # 2 sending, 3 waiting
    held.wait_for(2)
    for n in range(3):
        assert slots.busy(HOST) == 2 and len(held.slots) == 2 + n  # still two at a time here
        held.slots[n].release(timed_out=False)
        held.wait_for(3 + n)

    assert started == [STARTED] * 2 + [WAITING] * 3 and all(slot.token is None for slot in held.slots)
    warnings = [r for r in caplog.records if "Redis cannot be reached" in r.getMessage()]
    assert len(warnings) == 1


def test_the_destination_of_an_unreadable_url_is_the_url_itself() -> None:
    # urlsplit raises on it; the flusher files outcomes under the destination and must not fail for it.
    assert hosts.destination("http://[::ｆｆｆｆ:127.0.0.1]/") == "http://[::ｆｆｆｆ:127.0.0.1]/"
    assert hosts.destination("http://Tracker.Example:8080/pb") == "tracker.example:8080"


def test_an_ipv6_destination_keeps_its_brackets_so_its_port_reads_as_one() -> None:
    assert hosts.destination("http://[2001:db8::1]:8443/pb") == "[2001:db8::1]:8443"
    assert hosts.destination("https://[2001:db8::1]/pb") == "[2001:db8::1]"


class CountingExecutor(ThreadPoolExecutor):
    """Counts the tasks handed to the executor."""

    def __init__(self) -> None:
        super().__init__(4)
        self.submitted = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_a_send_refused_by_the_cluster_waits_in_line_without_the_executor(
    connect: Callable[[], redis.Redis],
) -> None:
    """The courier puts it back at the head of its line itself: waking a sending thread for each refusal (when
    sends had threads) cost the workers CPU for about one refusal a delivery when processes share a slow
    host's slots."""
    first = shared(connect(), per_host=2)
    held_first = Held()
    for _ in range(2):
        assert first.submit(HOST, FAR, held_first.run, noop)
    held_first.wait_for(2)

    executor = CountingExecutor()
    layer = ClusterSlots(connect(), per_host=2, trip_after_timeouts=3, send_s=2)
    second = HostSlots(2, 3, executor, layer)
    held_second = Held()
    given_up = threading.Event()
    assert second.submit(HOST, FAR, held_second.run, noop)
    assert second.submit(HOST, time.monotonic() + 0.3, held_second.run, given_up.set)
    time.sleep(0.5)  # about 10 refusals by the retry timer, each handled in the courier's thread
    assert held_second.slots == []
    assert given_up.is_set()  # the one whose start_by passed was given back, as before
    assert executor.submitted == 0

    held_first.slots[0].release(timed_out=False)
    held_second.wait_for(1)
    assert executor.submitted == 1


def test_an_inline_task_submitted_by_a_task_runs_after_it_however_long_the_chain() -> None:
    """A rolled-back batch frees a slot that starts the next in line, whose release starts the next...:
    nested, a line longer than Python's recursion limit allows would fail part-way and leak slots."""
    executor = hosts.Inline()
    order: list[str] = []
    ran = 0

    def chain(left: int) -> None:
        nonlocal ran
        ran += 1
        if left:
            executor.submit(chain, left - 1)

    def outer() -> None:
        executor.submit(order.append, "inner")
        order.append("outer")

    executor.submit(outer)
    executor.submit(chain, 5000)

    assert order == ["outer", "inner"]
    assert ran == 5001
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(order.append, "late")


class FreezingProxy:
    """A TCP relay to Redis that can go silent without closing anything: a half-open connection, as a
    network that drops packets leaves it (no error ever reaches the client)."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self.frozen = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._server.accept()
                upstream = socket.create_connection(self._target)
                self._sockets += [client, upstream]
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                while self.frozen.is_set():  # held, unread: neither side hears anything
                    time.sleep(0.05)
                sink.sendall(data)

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_a_freed_slots_channel_gone_silent_is_noticed_and_listened_to_afresh(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workers.cluster")
    monkeypatch.setattr(cluster, "LISTEN_WAIT_S", 0.05)
    monkeypatch.setattr(cluster, "LISTEN_PING_S", 0.3)
    monkeypatch.setattr(cluster, "DOWN_RETRY_S", 0.2)
    proxy = FreezingProxy(redis_url.removeprefix("redis://").split("/")[0])
    layer = ClusterSlots(
        cluster.connect(f"redis://127.0.0.1:{proxy.port}"), per_host=1, trip_after_timeouts=3, send_s=2
    )
    heard: list[str] = []
    publisher = redis.Redis.from_url(redis_url)
    try:
        layer.listen(heard.append)
        eventually(lambda: publisher.publish(cluster.freed_channel(layer._prefix), "a.example") == 1)
        eventually(lambda: heard[-1:] == ["a.example"])

        proxy.frozen.set()  # its connection goes quiet: no error, no message, no answer to a PING
        eventually(lambda: any("lost the freed" in r.getMessage() for r in caplog.records), timeout_s=3)
        proxy.frozen.clear()

        eventually(lambda: any("listening for freed" in r.getMessage() for r in caplog.records), timeout_s=3)
        eventually(lambda: publisher.publish(cluster.freed_channel(layer._prefix), "b.example") >= 1)
        eventually(lambda: "b.example" in heard)
    finally:
        layer.close()
        publisher.close()
        proxy.close()
