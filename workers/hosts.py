"""Per-host slots: a slow or dead receiver occupies at most its own slots, in this process and in the cluster.

Each host has `per_host` slots; a send beyond them waits in the host's line, holding no thread, until a
slot frees or its `start_by` passes (then it is given back unsent, so its lease never runs out mid-send).
Only a host that is making progress gets a line, and only as long as its recent turnaround (answer, or fast
failure) says the send will start before its `start_by`: a host answering in 2 s takes into its line only what
its slots can start in the seconds a send may wait (the rest go back to the database, to be offered again
later). A host that has not answered a send of this process yet keeps one round of its slots in line once
sends to other hosts that started SLOWER_THAN_PEERS_S after its first have been answered (a receiver that
hangs from the start is found out in about that time, not in STALL_S). A host whose slots are all busy and
that has answered nothing for a second takes no more work. A host whose last answers were all timeouts is
"tripped": it gets one slot and no line until it answers again, so a hanging publisher holds one request in
flight.

With a `ClusterSlots` (Redis), the same caps and circuit hold across every worker process: a send takes a
cluster slot before it leaves (one script call; the send starts once Redis has answered, so nothing waits
for the round trip) and gives it back after (one more, not waited for, which also reports a timeout or an
answer to the circuit). A finished send hands its slot straight to the next one waiting here for the same
host, without asking Redis, while the slot is still held (its lease renewed, see `workers.cluster`) and for
up to `cluster.HAND_ON_FOR_S` after Redis gave it; with nobody waiting, an answered send's slot is parked for
the next send to the host (`cluster.PARK_S`), which then takes it without asking Redis either.
A send refused because other processes hold the host's slots waits at the head of the line; Redis keeps the
next slot freed there for it and tells this process when it is freed, and a timer asks again every RETRY_S
while any host is refused. Such a process has nothing in flight to the host to judge its silence by: the
process whose sends there go unanswered tells the others through Redis (`cluster.mark_silent`). If Redis
cannot be reached the caps are per process.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from enum import Enum
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from workers.cluster import ClusterSlots, Outcome

log = logging.getLogger(__name__)

STALL_S = 1.0
# How much later than its first send a send to another host may start and be answered before a host that
# has not answered yet takes no more sends into its line (see `_may_wait`).
SLOWER_THAN_PEERS_S = 0.1
LINE_PER_SLOT = 8
# Weight of the latest answer in a host's running answer time.
ANSWER_WEIGHT = 0.2
FORGET_AFTER_S = 300.0
# How often sends refused by the cluster ask for a slot again: a slot freed elsewhere is taken at once when
# this process is first in line for it (told by Redis, `ClusterSlots.listen`), else up to this late.
RETRY_S = 0.2


def destination(request_url: str) -> str:
    """The host (and port, when not the default) whose slots a request takes; what deliveries keep as
    `destination_host` (support searches it: `dispatcher.host_filter`)."""
    try:
        parts = urlsplit(request_url)
        host = (parts.hostname or "").lower()
    except ValueError:  # unreadable (a bad [IPv6]): its send fails as `template`; it must not break a flush
        return request_url[:255]
    try:
        port = parts.port
    except ValueError:
        port = None
    if ":" in host:  # IPv6: in brackets, so that its own colons are never read as a port's
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


P = ParamSpec("P")
T = TypeVar("T")


class Inline(Executor):
    """Runs each task in the thread that submits it: the engine's tasks never block (they hand their request
    to the client's event loop and return), so they need no thread of their own. A task submitted by a task
    runs after it, not inside it: a batch given back frees a slot that starts the next in line, whose release
    starts the next... and nested, a long line would go past Python's recursion limit."""

    def __init__(self) -> None:
        self._shut = False
        self._running = threading.local()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if self._shut:
            raise RuntimeError("the executor is shut down")
        future: Future[T] = Future()
        task = functools.partial(self._run, future, functools.partial(fn, *args, **kwargs))
        queued: deque[Callable[[], None]] | None = getattr(self._running, "queue", None)
        if queued is not None:  # inside a task of this thread: after it
            queued.append(task)
            return future
        self._running.queue = queued = deque([task])
        try:
            while queued:
                queued.popleft()()
        finally:
            self._running.queue = None
            # Something beyond an Exception (SystemExit, a signal's) stopped the drain: the tasks behind it
            # may hold host slots already, so they still run (each on its own).
            while queued:
                queued.popleft()()
        return future

    @staticmethod
    def _run(future: Future[T], call: Callable[[], T]) -> None:
        try:
            future.set_result(call())
        except Exception as exc:  # noqa: BLE001 - as a thread pool would: the caller's thread goes on
            log.exception("a send's task failed")
            future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shut = True


class Admission(Enum):
    STARTED = "started"  # on its way now (it may still wait here for a cluster slot)
    WAITING = "waiting"  # in its host's line: it starts when a slot frees, or is given back
    REFUSED = "refused"  # not taken: the host is busy or has stopped answering

    def __bool__(self) -> bool:
        """Taken (started or waiting)."""
        return self is not Admission.REFUSED


class Slot:
    """One request's place among its host's slots, passed to the task that sends it; `release` it after."""

    def __init__(self, owner: HostSlots, host: str) -> None:
        self.host = host
        self.token: str | None = None  # its cluster slot (None: per-process only)
        self.answered = False  # an answer on it the cluster has not been told of (it was handed on)
        self.started_at = 0.0  # when its current send started (monotonic)
        self.began = False  # a send went out on it (counted in its host's `in_flight` until it ends)
        self._owner = owner

    def release(self, *, timed_out: bool, sent: bool = True, answer_s: float | None = None) -> None:
        """`sent=False`: the request never left (its job's claim was rolled back); the circuit is not told.
        `answer_s`: how long it took, when it ended without a timeout (None otherwise)."""
        self._owner.release(self, timed_out=timed_out, sent=sent, answer_s=answer_s)


Task = Callable[[Slot], None]
GiveUp = Callable[[], None]


@dataclass
class _Waiting:
    start_by: float
    run: Task
    give_up: GiveUp


@dataclass
class _Host:
    progress_at: float  # last answer, or when it was first seen
    answer_s: float | None = None  # running average of its turnaround; None: nothing ended yet
    busy: int = 0  # sends started here: asking for a cluster slot or in flight
    in_flight: int = 0  # sends gone out here and not ended: only their silence says the host has stopped
    timeouts: int = 0  # consecutive timeouts: the cluster's count as of its last answer, counted on here
    refused: bool = False  # the cluster had no slot: the line waits for news of a freed one, or the retry
    # A freed slot was announced while an ask was on its way (its refusal may come after the news): the
    # refusal asks again at once rather than wait for the retry.
    freed_meanwhile: bool = False
    answered: bool = False  # it has answered a send of this process (or failed one fast)
    first_sent_at: float | None = None  # when its first send since it was last idle started, until it answers
    told_silent: bool = False  # the cluster has been told it is silent here (since its last answer)
    silent_until: float = 0.0  # a cluster refusal said it is silent where its slots are held: refused here
    line: deque[_Waiting] = field(default_factory=deque)


class HostSlots:
    def __init__(
        self,
        per_host: int,
        trip_after_timeouts: int,
        executor: Executor,
        cluster: ClusterSlots | None = None,
    ) -> None:
        self.per_host = per_host
        self.trip_after_timeouts = trip_after_timeouts
        self.cluster = cluster
        self._executor = executor
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._retrying = False
        self._closed = threading.Event()
        # The start of the latest-started send that has been answered, whichever its host (see `_may_wait`).
        self._answered_start = float("-inf")
        if cluster is not None:
            cluster.listen(self._freed)

    def submit(self, host: str, start_by: float, run: Task, give_up: GiveUp) -> Admission:
        """Run `run` (which must end with `slot.release`) now or when a slot frees, or refuse it."""
        now = time.monotonic()
        waiting = _Waiting(start_by, run, give_up)
        with self._lock:
            state = self._hosts.setdefault(host, _Host(progress_at=now))
            if state.busy == 0 and not state.line and not state.refused:
                # Idle until now: its silence since the last answer says nothing (nothing was asked of it).
                # Counting it made a burst after a quiet second take only `per_host` sends and refuse the
                # rest as if the host had stopped answering (bench.chaos: 16 sends every 15 s).
                state.progress_at = max(state.progress_at, now)
                state.first_sent_at = None  # nor does a first send that may never have left (see `_begin`)
            free = state.busy < self._limit(state) and not state.line and not state.refused
            if free and now >= state.silent_until:
                state.busy += 1
            elif self._may_wait(state, now, start_by):
                state.line.append(waiting)
                return Admission.WAITING
            else:
                return Admission.REFUSED
        self._dispatch(host, [waiting], [])
        return Admission.STARTED

    def release(
        self, slot: Slot, *, timed_out: bool, sent: bool = True, answer_s: float | None = None
    ) -> None:
        host = slot.host
        now = time.monotonic()
        handed_to: _Waiting | None = None
        start: list[_Waiting] = []
        expired: list[_Waiting] = []
        heard_again = False  # it answers after this process told the cluster it was silent
        with self._lock:
            state = self._hosts[host]
            if sent:
                state.timeouts = state.timeouts + 1 if timed_out else 0
                if not timed_out:
                    state.progress_at = now
                    state.answered = True
                    heard_again, state.told_silent = state.told_silent, False
                    state.silent_until = 0.0
                    slot.answered = True
                    self._answered_start = max(self._answered_start, slot.started_at)
                if answer_s is not None:
                    last = state.answer_s
                    state.answer_s = answer_s if last is None else last + ANSWER_WEIGHT * (answer_s - last)
            if self._may_hand_on(slot, state, timed_out):
                while state.line and handed_to is None:
                    waiting = state.line.popleft()
                    if waiting.start_by < now:
                        expired.append(waiting)
                    else:
                        handed_to = waiting
            if handed_to is None:
                state.busy -= 1
                if slot.began:
                    slot.began = False
                    state.in_flight -= 1
                state.refused = False  # a slot was freed here: the next in line may take it at once
                start, expired = self._take_line(state, now, expired)
            if handed_to is not None:
                # Taken over by a send that has not gone out yet if this one never did (too late to start).
                self._going_out(state, slot, now)
            if heard_again and self.cluster is not None:
                # Its slot may be parked or handed on: no release tells Redis. Queued under the lock, so that
                # it cannot overtake the mark of a silence that `expire` judged before this answer.
                self.cluster.clear_silent(host)
            self._forget_if_idle(host, state)
        if handed_to is not None:
            slot.started_at = now
            self._give_back(expired)
            with contextlib.suppress(RuntimeError):  # the engine is closing: its sends stand down with it
                self._executor.submit(handed_to.run, slot)
            return
        if slot.token is not None and self.cluster is not None:
            # Not waited for: the sends started next ask for their slots after this call, on the same line.
            outcome: Outcome = "timeout" if timed_out else "answer" if sent else "unsent"
            self.cluster.release(
                host,
                slot.token,
                outcome,
                answered_before=slot.answered,
                then=lambda timeouts: self._learn(host, timeouts),
            )
        self._dispatch(host, start, expired)

    def expire(self) -> None:
        """Give back waiting sends whose time to start has passed (called periodically)."""
        now = time.monotonic()
        expired: list[_Waiting] = []
        with self._lock:
            for host, state in list(self._hosts.items()):
                while state.line and state.line[0].start_by < now:
                    expired.append(state.line.popleft())
                if self.cluster is not None and not state.told_silent and self._silent(state, now):
                    # Under the lock: an answer's clear_silent is queued after it, never before.
                    state.told_silent = self.cluster.mark_silent(host)
                self._forget_if_idle(host, state)
        self._give_back(expired)

    def stalled(self, host: str) -> bool:
        """All slots busy and no answer for a while (or tripped): more work would only wait."""
        with self._lock:
            state = self._hosts.get(host)
            if state is None:
                return False
            now = time.monotonic()
            full = state.busy >= self._limit(state)
            return self._tripped(state) or now < state.silent_until or (full and self._silent(state, now))

    def busy(self, host: str) -> int:
        with self._lock:
            state = self._hosts.get(host)
            return state.busy if state else 0

    def close(self) -> None:
        """Stops the retry timer and the calls to Redis (the engine's executor is shutting down)."""
        self._closed.set()
        if self.cluster is not None:
            self.cluster.close()

    # --- starting sends: a cluster slot first (answered in the courier's thread), then the task ---

    def _dispatch(self, host: str, start: list[_Waiting], expired: list[_Waiting]) -> None:
        self._give_back(expired)
        for waiting in start:
            if self.cluster is None:
                self._submit(host, waiting, None)
            else:
                self.cluster.acquire_then(host, functools.partial(self._submit, host, waiting))

    def _submit(self, host: str, waiting: _Waiting, answer: tuple[str | None, int] | None) -> None:
        """Starts a send (through the executor) with its cluster slot's answer (None: no cluster, or Redis is
        unreachable). Called in the courier's thread (or in the caller's, for a parked slot or no answer from
        Redis), so tasks must not block (the engine's hand their request to the client's event loop). The
        courier's own timeouts (`cluster.connect`: 1 s) bound the wait for an answer. A refusal puts the send
        back in its line right here, without the executor (about one refusal a delivery when processes share
        a slow host's slots, bench.delivery's 100 ms run)."""
        if answer is not None and answer[0] is None and self._refused(host, waiting, answer[1], here=True):
            return
        # The engine is closing: its sends stand down with it. A slot taken for this one is not renewed any
        # more (the slots close first) and expires with its lease, within LEASE_S (3 s).
        with contextlib.suppress(RuntimeError):
            self._executor.submit(self._begin, host, waiting, answer)

    def _begin(self, host: str, waiting: _Waiting, answer: tuple[str | None, int] | None) -> None:
        slot = Slot(self, host)
        if answer is not None:  # else no cluster, or Redis is unreachable: this process's caps only
            token, timeouts = answer
            if token is None:
                self._refused(host, waiting, timeouts)
                return
            slot.token = token
            with self._lock:
                state = self._hosts[host]
                state.timeouts = timeouts
                # After a refusal, a slot freed elsewhere was taken: the rest of the line may find more.
                start, expired = self._take_line(state, time.monotonic(), [])
            if start or expired:
                self._dispatch(host, start, expired)
        if (
            time.monotonic() > waiting.start_by
        ):  # it waited (for Redis, for the executor): too late to finish in time
            slot.release(timed_out=False, sent=False)
            waiting.give_up()
            return
        now = slot.started_at = time.monotonic()
        with self._lock:
            state = self._hosts[host]  # counted busy: not forgotten
            self._going_out(state, slot, now)
            if not state.answered and state.first_sent_at is None:
                state.first_sent_at = now
        waiting.run(slot)

    def _going_out(self, state: _Host, slot: Slot, now: float) -> None:
        """Under self._lock: a send goes out on `slot`; counted in flight (once) until it ends."""
        if slot.began:
            return
        if state.in_flight == 0:
            # Its silence counts from here: while nothing of ours was out there (other processes held its
            # slots), none was heard because none was asked. A new silence is the cluster's to hear of again.
            state.progress_at = max(state.progress_at, now)
            state.told_silent = False
        state.in_flight += 1
        slot.began = True

    def _refused(self, host: str, waiting: _Waiting, timeouts: int, *, here: bool = False) -> bool:
        """Other processes hold the host's slots: wait first in line for news of a freed slot (`_freed`) or
        the retry timer, unless the host is tripped (no line) or it is too late to start. `here`: called
        before the executor, which gives the send back instead (a test's thread pool may block on a
        give-up): False, and nothing done, if it must be given back."""
        now = time.monotonic()
        expired: list[_Waiting] = []
        start: list[tuple[str, _Waiting]] = []
        silent = self.cluster is not None and self.cluster.silent_elsewhere(host)
        with self._lock:
            if here and (timeouts >= self.trip_after_timeouts or waiting.start_by < now or silent):
                return False
            state = self._hosts[host]
            state.busy -= 1
            state.timeouts = timeouts
            if silent:
                # Where its slots are held it has answered nothing for a while: waiting here for one of them
                # would hold these sends (claimed, logged) until their start_by. Refused for STALL_S.
                state.silent_until = now + STALL_S
            if self._tripped(state) or silent:
                expired = [waiting, *state.line]
                state.line.clear()
            elif waiting.start_by < now:
                expired = [waiting]
            else:
                state.line.appendleft(waiting)
            if state.line:
                state.refused = True
                self._start_retrying()
                if state.freed_meanwhile:
                    self._ask_again(host, state, now, expired, start)
            self._forget_if_idle(host, state)
        self._asking(expired, start)
        return True

    def _start_retrying(self) -> None:
        # Under self._lock.
        if not self._retrying and not self._closed.is_set():
            self._retrying = True
            threading.Thread(target=self._retry_refused, name="slots-retry", daemon=True).start()

    def _retry_refused(self) -> None:
        """Every RETRY_S while some host's line was refused by the cluster: its first send asks again."""
        while not self._closed.wait(RETRY_S):
            now = time.monotonic()
            expired: list[_Waiting] = []
            start: list[tuple[str, _Waiting]] = []
            with self._lock:
                refused = [(host, state) for host, state in self._hosts.items() if state.refused]
                if not refused:
                    self._retrying = False
                    return
                for host, state in refused:
                    self._ask_again(host, state, now, expired, start)
            self._asking(expired, start)

    def _freed(self, host: str) -> None:
        """Another process gave back a slot of `host`, where this one was refused and is first in line for
        the next (`ClusterSlots.listen`): its first send asks now, not at the next retry."""
        expired: list[_Waiting] = []
        start: list[tuple[str, _Waiting]] = []
        with self._lock:
            state = self._hosts.get(host)
            if state is None or self._closed.is_set():
                return
            if not state.refused:
                # An ask of this process may be on its way, to be refused after the news: it asks again then.
                state.freed_meanwhile = state.busy > 0
                return
            self._ask_again(host, state, time.monotonic(), expired, start)
        self._asking(expired, start)

    def _ask_again(
        self,
        host: str,
        state: _Host,
        now: float,
        expired: list[_Waiting],
        start: list[tuple[str, _Waiting]],
    ) -> None:
        """Under self._lock: a refused line's first send goes to ask the cluster again (into `start`,
        counted busy), those too late to start into `expired`."""
        state.refused = state.freed_meanwhile = False
        while state.line and state.line[0].start_by < now:
            expired.append(state.line.popleft())
        if state.line and state.busy < self._limit(state):
            state.busy += 1
            start.append((host, state.line.popleft()))
        self._forget_if_idle(host, state)

    def _asking(self, expired: list[_Waiting], start: list[tuple[str, _Waiting]]) -> None:
        """After `_ask_again` (outside the lock): gives back the sends too late, sends the others to ask."""
        self._give_back(expired)
        for host, waiting in start:
            self._dispatch(host, [waiting], [])

    def _take_line(
        self, state: _Host, now: float, expired: list[_Waiting]
    ) -> tuple[list[_Waiting], list[_Waiting]]:
        """Under self._lock: the waiting sends that may start now (counted busy), and those too late."""
        start: list[_Waiting] = []
        while state.line and not state.refused and state.busy < self._limit(state):
            waiting = state.line.popleft()
            if waiting.start_by < now:
                expired.append(waiting)
            else:
                state.busy += 1
                start.append(waiting)
        return start, expired

    def _may_hand_on(self, slot: Slot, state: _Host, timed_out: bool) -> bool:
        """Under self._lock: whether the next send in line may take this slot as it is, without Redis."""
        if not state.line or state.busy > self._limit(state):
            return False
        if self.cluster is None:
            return True
        if slot.token is None:  # taken while Redis was unreachable: kept only while it still is
            return self.cluster.unreachable()
        # A timeout goes to the circuit at once; a slot the cluster no longer holds is taken afresh.
        return not timed_out and self.cluster.hand_on(slot.token)

    def _learn(self, host: str, timeouts: int) -> None:
        """The cluster's count of the host's consecutive timeouts; a tripped host is remembered here."""
        with self._lock:
            state = self._hosts.get(host)
            if state is None:
                if timeouts < self.trip_after_timeouts:
                    return
                state = self._hosts[host] = _Host(progress_at=time.monotonic())
            state.timeouts = timeouts

    def _give_back(self, expired: list[_Waiting]) -> None:
        for waiting in expired:
            waiting.give_up()

    def _may_wait(self, state: _Host, now: float, start_by: float) -> bool:
        """Under self._lock: whether a send may wait in the host's line."""
        if self._tripped(state) or self._silent(state, now) or now < state.silent_until:
            return False
        limit = self._limit(state)
        if len(state.line) >= limit * LINE_PER_SLOT:
            return False
        if self._slower_than_peers(state):
            # Not answered yet, while sends to other hosts started well after its first have been: one round
            # of its slots in line. Left to the stall rule above, a hanging host's line took LINE_PER_SLOT
            # sends a slot in each process, each claimed and logged (and given back later): 368-544 attempts
            # on 4 hanging hosts in bench.delivery's isolation runs.
            return len(state.line) < limit
        if state.answer_s is None:  # new here: the rules above end its line if it does not answer
            return True
        # Its turn comes after the line ahead of it has been served, `limit` at a time.
        expected_wait = (len(state.line) // limit + 1) * state.answer_s
        return now + expected_wait < start_by

    def _slower_than_peers(self, state: _Host) -> bool:
        """Under self._lock: it has not answered since its first send here, and sends to other hosts that
        started SLOWER_THAN_PEERS_S after that one have been answered."""
        first = state.first_sent_at
        return not state.answered and first is not None and self._answered_start > first + SLOWER_THAN_PEERS_S

    def _silent(self, state: _Host, now: float) -> bool:
        """Under self._lock: sends of this process are out there and none has been answered for STALL_S."""
        return state.in_flight > 0 and now - state.progress_at >= STALL_S

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
