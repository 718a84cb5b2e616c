"""Per-host slots: a line for a host that answers, none for one that has stopped, one slot once tripped."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from workers import hosts
from workers.hosts import HostSlots

FAR = 1e12


def noop() -> None:
    pass


def test_beyond_its_slots_a_host_gets_a_bounded_line() -> None:
    slots = HostSlots(per_host=2, trip_after_timeouts=3, executor=ThreadPoolExecutor(1))
    started = [slots.submit("h", FAR, noop, noop) for _ in range(2 + 2 * hosts.LINE_PER_SLOT + 1)]

    assert started.count(True) == 2 + 2 * hosts.LINE_PER_SLOT and started[-1] is False
    assert slots.busy("h") == 2


def test_a_host_that_stopped_answering_gets_no_line(monkeypatch: object) -> None:
    slots = HostSlots(per_host=1, trip_after_timeouts=3, executor=ThreadPoolExecutor(1))
    assert slots.submit("h", FAR, noop, noop)
    time.sleep(hosts.STALL_S + 0.1)

    assert not slots.submit("h", FAR, noop, noop)
    assert slots.submit("other", FAR, noop, noop)  # its neighbours are not affected


def test_after_consecutive_timeouts_a_host_is_tripped_to_one_slot_until_it_answers() -> None:
    slots = HostSlots(per_host=4, trip_after_timeouts=2, executor=ThreadPoolExecutor(1))
    for _ in range(2):
        assert slots.submit("h", FAR, noop, noop)
        slots.release("h", timed_out=True)

    assert [slots.submit("h", FAR, noop, noop) for _ in range(3)] == [True, False, False]
    slots.release("h", timed_out=False)
    assert [slots.submit("h", FAR, noop, noop) for _ in range(4)] == [True] * 4


def test_a_waiting_send_past_its_start_by_is_given_back() -> None:
    given_back: list[str] = []
    slots = HostSlots(per_host=1, trip_after_timeouts=3, executor=ThreadPoolExecutor(1))
    slots.submit("h", FAR, noop, noop)
    slots.submit("h", time.monotonic() + 0.05, noop, lambda: given_back.append("late"))
    time.sleep(0.1)

    slots.expire()

    assert given_back == ["late"]


def test_a_tripped_or_silent_host_reports_itself_stalled() -> None:
    slots = HostSlots(per_host=1, trip_after_timeouts=1, executor=ThreadPoolExecutor(1))
    assert slots.submit("h", FAR, noop, noop)
    assert not slots.stalled("h")
    time.sleep(hosts.STALL_S + 0.05)
    assert slots.stalled("h")
    slots.release("h", timed_out=True)

    assert slots.stalled("h") and not slots.stalled("never-seen")
