"""Per-host slots in one worker process: a slow or dead receiver occupies at most its own slots.

Each host has `per_host` slots; a send beyond them waits in the host's line, holding no thread, until a
slot frees or its `start_by` passes (then it is given back unsent, so its lease never runs out mid-send).
Only a host that is making progress gets a line, and only as long as its recent answer time says the send
will start before its `start_by`: a host answering in 2 s with 8 slots takes a line of about 4 per second
it may wait, not more (the rest go back to the database, to be offered again later). A host that never
answered gets a line of one round; one whose slots are all busy and that has answered nothing for a second
takes no more work. A host whose last answers were all timeouts is "tripped": it gets one slot and no line
until it answers again, so a hanging publisher costs one thread per process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlsplit

STALL_S = 1.0
LINE_PER_SLOT = 8
FORGET_AFTER_S = 300.0
# Weight of the latest answer in a host's running answer time.
ANSWER_WEIGHT = 0.2

Task = Callable[[], None]
# Called with True when the send waited in its host's line (it then held no capacity until now).
Run = Callable[[bool], None]


class Admission(Enum):
    STARTED = "started"  # running now
    WAITING = "waiting"  # in its host's line: it starts when a slot frees, or is given back
    REFUSED = "refused"  # not taken: the host is busy or has stopped answering


def destination(request_url: str) -> str:
    """The host (and port, when not the default) whose slots a request takes."""
    parts = urlsplit(request_url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


@dataclass
class _Waiting:
    start_by: float
    run: Run
    give_up: Task


@dataclass
class _Host:
    progress_at: float  # last answer, or when it was first seen
    answer_s: float | None = None  # running average of its answer time; None: it never answered
    busy: int = 0
    timeouts: int = 0
    line: deque[_Waiting] = field(default_factory=deque)


class HostSlots:
    def __init__(self, per_host: int, trip_after_timeouts: int, executor: Executor) -> None:
        self.per_host = per_host
        self.trip_after_timeouts = trip_after_timeouts
        self._executor = executor
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}

    def submit(self, host: str, start_by: float, run: Run, give_up: Task) -> Admission:
        """Run `run` (which must end with `release(host)`) now or when a slot frees, or refuse it."""
        now = time.monotonic()
        with self._lock:
            state = self._hosts.setdefault(host, _Host(progress_at=now))
            if state.busy < self._limit(state) and not state.line:
                state.busy += 1
            elif self._may_wait(state, now, start_by):
                state.line.append(_Waiting(start_by, run, give_up))
                return Admission.WAITING
            else:
                return Admission.REFUSED
        self._executor.submit(run, False)
        return Admission.STARTED

    def release(self, host: str, *, timed_out: bool, answer_s: float | None = None) -> None:
        """A send to `host` ended; `answer_s`: how long its answer took (None when it got none)."""
        expired: list[_Waiting] = []
        start: list[_Waiting] = []
        now = time.monotonic()
        with self._lock:
            state = self._hosts[host]
            state.busy -= 1
            state.timeouts = state.timeouts + 1 if timed_out else 0
            if not timed_out:
                state.progress_at = now
            if answer_s is not None:
                previous = state.answer_s
                state.answer_s = (
                    answer_s if previous is None else previous + ANSWER_WEIGHT * (answer_s - previous)
                )
            while state.line and state.busy < self._limit(state):
                waiting = state.line.popleft()
                if waiting.start_by < now:
                    expired.append(waiting)
                else:
                    state.busy += 1
                    start.append(waiting)
            self._forget_if_idle(host, state)
        self._dispatch(start, expired)

    def expire(self) -> None:
        """Give back waiting sends whose time to start has passed (called periodically)."""
        now = time.monotonic()
        expired: list[_Waiting] = []
        with self._lock:
            for host, state in list(self._hosts.items()):
                while state.line and state.line[0].start_by < now:
                    expired.append(state.line.popleft())
                self._forget_if_idle(host, state)
        self._dispatch([], expired)

    def stalled(self, host: str) -> bool:
        """All slots busy and no answer for a while (or tripped): more work would only wait."""
        with self._lock:
            state = self._hosts.get(host)
            if state is None:
                return False
            full = state.busy >= self._limit(state)
            return self._tripped(state) or (full and time.monotonic() - state.progress_at >= STALL_S)

    def busy(self, host: str) -> int:
        with self._lock:
            state = self._hosts.get(host)
            return state.busy if state else 0

    def _dispatch(self, start: list[_Waiting], expired: list[_Waiting]) -> None:
        for waiting in expired:
            waiting.give_up()
        for waiting in start:
            self._executor.submit(waiting.run, True)

    def _may_wait(self, state: _Host, now: float, start_by: float) -> bool:
        if self._tripped(state) or now - state.progress_at >= STALL_S:
            return False
        limit = self._limit(state)
        if state.answer_s is None:  # never answered: one round of waiting, it may be dead
            return len(state.line) < limit
        # Its turn comes after the line ahead of it has been answered, `limit` at a time.
        expected_wait = (len(state.line) // limit + 1) * state.answer_s
        return len(state.line) < limit * LINE_PER_SLOT and now + expected_wait < start_by

    def _limit(self, state: _Host) -> int:
        return 1 if self._tripped(state) else self.per_host

    def _tripped(self, state: _Host) -> bool:
        return state.timeouts >= self.trip_after_timeouts

    def _forget_if_idle(self, host: str, state: _Host) -> None:
        # Hosts idle for a while are dropped to keep the table small; until then their answer time is what
        # sizes their line. A tripped host is remembered until it answers.
        idle_s = time.monotonic() - state.progress_at
        if state.busy == 0 and not state.line and state.timeouts == 0 and idle_s > FORGET_AFTER_S:
            del self._hosts[host]
