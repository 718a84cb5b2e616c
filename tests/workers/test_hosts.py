"""Per-host slots: a line for a host that answers, none for one that has stopped, one slot once tripped."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from workers import hosts
from workers.hosts import Admission, HostSlots

FAR = 1e12
STARTED, WAITING, REFUSED = Admission.STARTED, Admission.WAITING, Admission.REFUSED


def noop(*_args: object) -> None:
    pass


def answered(slots: HostSlots, host: str, answer_s: float) -> None:
    """One send to `host` that got its answer in `answer_s`."""
    assert slots.submit(host, FAR, noop, noop) is STARTED
    slots.release(host, timed_out=False, answer_s=answer_s)


def test_beyond_its_slots_a_host_that_answers_gets_a_bounded_line() -> None:
    slots = HostSlots(per_host=2, trip_after_timeouts=3, executor=ThreadPoolExecutor(1))
    answered(slots, "h", 0.01)
    taken = [slots.submit("h", FAR, noop, noop) for _ in range(2 + 2 * hosts.LINE_PER_SLOT + 1)]

    assert taken == [STARTED] * 2 + [WAITING] * 2 * hosts.LINE_PER_SLOT + [REFUSED]
    assert slots.busy("h") == 2


def test_a_host_that_never_answered_gets_a_line_of_one_round() -> None:
    slots = HostSlots(per_host=2, trip_after_timeouts=3, executor=ThreadPoolExecutor(1))

    taken = [slots.submit("h", FAR, noop, noop) for _ in range(5)]

    assert taken == [STARTED, STARTED, WAITING, WAITING, REFUSED]


def test_a_slow_host_lines_up_only_what_can_start_before_its_start_by() -> None:
    slots = HostSlots(per_host=2, trip_after_timeouts=3, executor=ThreadPoolExecutor(1))
    answered(slots, "slow", 2.0)
    start_by = time.monotonic() + 3  # time for one round of 2 s answers, not two

    taken = [slots.submit("slow", start_by, noop, noop) for _ in range(5)]

    assert taken == [STARTED, STARTED, WAITING, WAITING, REFUSED]


def test_a_host_that_stopped_answering_gets_no_line(monkeypatch: object) -> None:
    slots = HostSlots(per_host=1, trip_after_timeouts=3, executor=ThreadPoolExecutor(1))
    assert slots.submit("h", FAR, noop, noop) is STARTED
    time.sleep(hosts.STALL_S + 0.1)

    assert slots.submit("h", FAR, noop, noop) is REFUSED
    assert slots.submit("other", FAR, noop, noop) is STARTED  # its neighbours are not affected


def test_after_consecutive_timeouts_a_host_is_tripped_to_one_slot_until_it_answers() -> None:
    slots = HostSlots(per_host=4, trip_after_timeouts=2, executor=ThreadPoolExecutor(1))
    for _ in range(2):
        assert slots.submit("h", FAR, noop, noop) is STARTED
        slots.release("h", timed_out=True)

    assert [slots.submit("h", FAR, noop, noop) for _ in range(3)] == [STARTED, REFUSED, REFUSED]
    slots.release("h", timed_out=False, answer_s=0.05)
    assert [slots.submit("h", FAR, noop, noop) for _ in range(4)] == [STARTED] * 4


def test_a_waiting_send_past_its_start_by_is_given_back() -> None:
    given_back: list[str] = []
    slots = HostSlots(per_host=1, trip_after_timeouts=3, executor=ThreadPoolExecutor(1))
    assert slots.submit("h", FAR, noop, noop) is STARTED
    assert slots.submit("h", time.monotonic() + 0.05, noop, lambda: given_back.append("late")) is WAITING
    time.sleep(0.1)

    slots.expire()

    assert given_back == ["late"]


def test_a_tripped_or_silent_host_reports_itself_stalled() -> None:
    slots = HostSlots(per_host=1, trip_after_timeouts=1, executor=ThreadPoolExecutor(1))
    assert slots.submit("h", FAR, noop, noop) is STARTED
    assert not slots.stalled("h")
    time.sleep(hosts.STALL_S + 0.05)
    assert slots.stalled("h")
    slots.release("h", timed_out=True)

    assert slots.stalled("h") and not slots.stalled("never-seen")
