"""Per-host slots in one worker process: a slow or dead receiver occupies at most its own slots.

Each host has `per_host` slots; a send beyond them waits in the host's line, holding no thread, until a
slot frees or its `start_by` passes (then it is given back unsent, so its lease never runs out mid-send).
Only a host that is making progress gets a line: one whose slots are all busy and that has answered
nothing for a second takes no more work. A host whose last answers were all timeouts is "tripped": it gets
one slot and no line until it answers again, so a hanging publisher costs one thread per process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

STALL_S = 1.0
LINE_PER_SLOT = 8

Task = Callable[[], None]


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
    run: Task
    give_up: Task


@dataclass
class _Host:
    progress_at: float  # last answer, or when it was first seen
    answered: bool = False  # a host that never answered gets a short line: it may be dead
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

    def submit(self, host: str, start_by: float, run: Task, give_up: Task) -> bool:
        """Run `run` (which must end with `release(host)`) now or when a slot frees; False: not taken."""
        now = time.monotonic()
        with self._lock:
            state = self._hosts.setdefault(host, _Host(progress_at=now))
            limit = self._limit(state)
            if state.busy < limit and not state.line:
                state.busy += 1
            elif (
                not self._tripped(state)
                and len(state.line) < limit * LINE_PER_SLOT
                and now - state.progress_at < STALL_S
            ):
                state.line.append(_Waiting(start_by, run, give_up))
                return True
            else:
                return False
        self._executor.submit(run)
        return True

    def release(self, host: str, *, timed_out: bool) -> None:
        expired: list[_Waiting] = []
        start: list[_Waiting] = []
        now = time.monotonic()
        with self._lock:
            state = self._hosts[host]
            state.busy -= 1
            state.timeouts = state.timeouts + 1 if timed_out else 0
            if not timed_out:
                state.progress_at = now
                state.answered = True
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
            self._executor.submit(waiting.run)

    def _may_wait(self, state: _Host, now: float) -> bool:
        line_max = self._limit(state) * (LINE_PER_SLOT if state.answered else 1)
        progressing = now - state.progress_at < STALL_S
        return not self._tripped(state) and progressing and len(state.line) < line_max

    def _limit(self, state: _Host) -> int:
        return 1 if self._tripped(state) else self.per_host

    def _tripped(self, state: _Host) -> bool:
        return state.timeouts >= self.trip_after_timeouts

    def _forget_if_idle(self, host: str, state: _Host) -> None:
        # Idle hosts are dropped to keep the table small; a tripped host is remembered until it answers.
        if state.busy == 0 and not state.line and state.timeouts == 0:
            del self._hosts[host]
