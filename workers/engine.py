"""The sending machinery of one worker process: claim a batch, send it concurrently, settle it in bulk.

A job returns as soon as its batch is claimed, logged and started: its requests go out on the HTTP client's
event loop (one thread for all of them), and a worker process takes the next job while they are in flight,
so a receiver answering in 100 ms (or never) does not hold the process. Outcomes are written in bulk by one
flusher thread. What is in flight when the process dies is not lost: its leases expire and the pump hands the
deliveries out again.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy.orm import Session

import macros
from dispatcher.config import Settings
from dispatcher.db import Database
from dispatcher.egress import render
from dispatcher.egress.client import EgressClient, Exchange, OutboundRequest
from dispatcher.egress.errors import DeliveryError
from dispatcher.egress.verdict import judge
from dispatcher.models import ErrorClass
from workers import attempts, claims, loading, metrics
from workers.cluster import ClusterSlots
from workers.hosts import Admission, HostSlots, Inline, Slot, destination
from workers.retry_policy import decide
from workers.settings import EngineSettings

log = logging.getLogger(__name__)

Send = tuple[render.Claimed, OutboundRequest]
# Hands deliveries to RQ: (id, attempt_count) pairs, so that each goes to its lane.
HandOn = Callable[[Sequence[tuple[int, int]]], object]

# How long a job waits for sending capacity before leaving the rest of its batch to the pump.
CAPACITY_WAIT_S = 10.0
TOP_UP_TO = 50
FLUSH_MAX = 1000
# How long the flusher waits after an outcome for others to write with it. A flush is a transaction of at
# least four statements, whatever its size; taking only what had arrived, flushes held 24-31 outcomes in
# bench.delivery. With 30 ms the flusher's CPU fell by a quarter and PostgreSQL's a delivery by about a
# tenth (fast sink and 100 ms, 4 pairs each; the rates moved within the machine's noise). An outcome is
# written up to this much later, and a delivery it held back in turn (`claims.next_in_turn`) goes that much
# later.
FLUSH_GATHER_S = 0.03


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:60]


class Engine:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        tuning: EngineSettings,
        *,
        client: EgressClient | None = None,
        name: str | None = None,
        hand_on: HandOn | None = None,
        redis_client: redis.Redis | None = None,
    ) -> None:
        """`hand_on` gets the deliveries a settled one held back (see `claims.in_turn`); without it (an
        engine run inside a test) the pump finds them. `redis_client`: receiver caps and the timeout circuit
        are shared through it with every worker process (without it they are this process's own)."""
        self.database = database
        self._hand_on = hand_on
        self.tuning = tuning
        self.name = name or worker_name()
        self.client = client or EgressClient(
            settings.allowed_networks,
            connect_timeout_s=tuning.connect_timeout_s,
            total_timeout_s=tuning.total_timeout_s,
            pool_size=tuning.max_in_flight,
        )
        # Sends start in the thread that admits them and go out on the client's event loop: no thread each.
        self._pool = Inline()
        cluster = None
        if redis_client is not None:
            cluster = ClusterSlots(
                redis_client,
                per_host=tuning.host_concurrency,
                trip_after_timeouts=tuning.circuit_timeouts,
                send_s=tuning.total_timeout_s,
            )
        self.slots = HostSlots(tuning.host_concurrency, tuning.circuit_timeouts, self._pool, cluster)
        self._capacity = threading.Condition()
        # Claimed and not yet settled in the database, except sends waiting in a host's line: counting them
        # let a slow host's line take the capacity of every other host (but see `_room`).
        self._in_use = 0
        self._waiting = 0  # in a host's line, until started or given back (and that written)
        # Postbacks whose receiver refused work here, until when (monotonic): their deliveries are not claimed
        # meanwhile (they stay queued; the pump offers them again later).
        self._resting: dict[int, float] = {}
        self._resting_lock = threading.Lock()
        # None wakes the flusher at close, so that it ends at once rather than at its next poll.
        self._outcomes: queue.SimpleQueue[attempts.Outcome | attempts.GiveBack | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._flusher = threading.Thread(target=self._flush_forever, name="flusher", daemon=True)
        self._flusher.start()

    def send_batch(self, delivery_ids: Sequence[int]) -> dict[str, int]:
        """Claim, log and start sending what is due among `delivery_ids`; returns counts (the job result)."""
        ids = list(dict.fromkeys(delivery_ids))
        granted = self._reserve(len(ids))
        # Room left in the batch (with capacity free now) is filled with other due first attempts.
        top_up = self._reserve(TOP_UP_TO - len(ids), wait=False) if granted == len(ids) else 0
        token = f"{self.name}/{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        later = now + timedelta(seconds=self.tuning.defer_s)
        # A send must start early enough to finish (total timeout) before its lease runs out.
        start_by = time.monotonic() + max(0.5, self.tuning.lease_s - self.tuning.total_timeout_s - 2)
        gate = _Gate()
        try:
            with self.database.session() as session:
                claimed = claims.claim(
                    session,
                    ids[:granted],
                    token=token,
                    lease_s=self.tuning.lease_s,
                    now=now,
                    top_up=top_up,
                    skip_postbacks=self._resting_postbacks(),
                )
                claims.postpone(session, ids[granted:], retry_at=later, now=now)
                batch = loading.load(session, {c.delivery_id: c.number for c in claimed})
                attempts.fail_unsendable(session, [c for c in batch if not c.sendable], token=token, now=now)
                sends, broken = self._prepare([c for c in batch if c.sendable], now)
                offered: dict[Admission, list[Send]] = {admission: [] for admission in Admission}
                for send in sends:
                    offered[self._offer(send, token, start_by, gate)].append(send)
                self._release_refused(session, offered[Admission.REFUSED], token, now)
                taken = offered[Admission.STARTED] + offered[Admission.WAITING]
                logged = [*taken, *((claimed_one, request) for claimed_one, request, _ in broken)]
                attempts.write_sending(session, logged, worker=self.name, now=now)
        except BaseException:
            gate.open(go=False)  # nothing was committed: the offered sends stand down unsent
            self._unreserve(granted + top_up)
            raise
        gate.open(go=True)
        metrics.stopped(sum(not c.sendable for c in batch))
        self._unreserve(granted + top_up - len(offered[Admission.STARTED]) - len(broken))
        for claimed_one, request, problem in broken:
            error = DeliveryError(ErrorClass.TEMPLATE, problem, permanent=True)
            self._settle(claimed_one, token, request, Exchange(), error)
        return {
            "claimed": len(claimed),
            "sent": len(taken),
            "deferred": len(offered[Admission.REFUSED]) + len(ids) - granted,
        }

    def drain(self, timeout_s: float) -> bool:
        """Wait until everything in flight is settled in the database (worker shutdown)."""
        deadline = time.monotonic() + timeout_s
        with self._capacity:
            while self._in_use > 0 or self._waiting > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._capacity.wait(left)
        return True

    def close(self) -> None:
        """Stops sending; outcomes already queued are still written. The flusher ends too, so that an engine
        closed in a process that goes on (a worker run inside a test) writes nothing afterwards."""
        self.slots.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._closing.set()
        self._outcomes.put(None)
        self._flusher.join(timeout=10)
        self.client.close()

    def _prepare(
        self, batch: Sequence[render.Claimed], now: datetime
    ) -> tuple[list[Send], list[tuple[render.Claimed, OutboundRequest, str]]]:
        sends: list[Send] = []
        broken: list[tuple[render.Claimed, OutboundRequest, str]] = []
        for claimed in batch:
            try:
                request = render.build_request(claimed, now, self.tuning.user_agent)
            except (macros.MacroError, TypeError, ValueError) as exc:
                # Logged as an attempt with the template as its URL, so the publisher sees what to fix.
                postback = claimed.postback
                logged = OutboundRequest(postback.method, postback.url_template)
                broken.append((claimed, logged, f"the template cannot be expanded: {exc}"))
                continue
            sends.append((claimed, request))
        return sends, broken

    def _offer(self, send: Send, token: str, start_by: float, gate: _Gate) -> Admission:
        claimed, request = send
        host = destination(request.url)

        # How it was taken decides what it holds: a send that started holds capacity (even while it waits
        # again for a cluster slot); one that waited in line holds none until it starts. Read after the gate
        # opens, which is after `submit` has answered.
        admission = Admission.REFUSED

        def run(slot: Slot) -> None:
            gate.then(functools.partial(start, slot))

        def start(slot: Slot, go: bool) -> None:
            if admission is Admission.WAITING:
                if go:
                    self._take_capacity()  # before it stops waiting: drain never sees it in neither
                self._change_waiting(-1)
            if go:
                self._send(claimed, token, request, slot)
            else:
                slot.release(timed_out=False, sent=False)

        def give_up() -> None:
            gate.then(stand_down)

        def stand_down(go: bool) -> None:
            held = admission is Admission.STARTED  # after the gate: a refusal may come before submit returns
            if go:
                self._outcomes.put(
                    attempts.GiveBack(claimed, token, self._wait_for(host), held_capacity=held)
                )
            elif not held:
                self._change_waiting(-1)

        admission = self.slots.submit(host, start_by, run, give_up)
        if admission is Admission.WAITING:
            self._change_waiting(+1)
        return admission

    def _release_refused(self, session: Session, refused: Sequence[Send], token: str, now: datetime) -> None:
        """Sends their host could not take: soon again if it is busy, later if it stopped answering."""
        by_wait: dict[float, list[int]] = {}
        rest_until: dict[int, float] = {}
        for claimed, request in refused:
            wait_s = self._wait_for(destination(request.url))
            by_wait.setdefault(wait_s, []).append(claimed.delivery_id)
            rest_until[claimed.postback_id] = time.monotonic() + wait_s
        for wait_s, ids in sorted(by_wait.items()):
            claims.release(session, ids, token=token, retry_at=now + timedelta(seconds=wait_s))
        if rest_until:
            with self._resting_lock:
                self._resting.update(rest_until)

    def _resting_postbacks(self) -> list[int]:
        now = time.monotonic()
        with self._resting_lock:
            for postback_id in [p for p, until in self._resting.items() if until <= now]:
                del self._resting[postback_id]
            return list(self._resting)

    def _wait_for(self, host: str) -> float:
        """When to offer a host its refused work again: soon if it is busy, after about one timeout if it
        has stopped answering (offering a hanging host its deliveries every few seconds only costs claims)."""
        if self.slots.stalled(host):
            return max(self.tuning.defer_s, self.tuning.total_timeout_s)
        return self.tuning.defer_s

    def _send(self, claimed: render.Claimed, token: str, request: OutboundRequest, slot: Slot) -> None:
        self.client.start(request, functools.partial(self._sent, claimed, token, request, slot))

    def _sent(
        self, claimed: render.Claimed, token: str, request: OutboundRequest, slot: Slot, exchange: Exchange
    ) -> None:
        """In the client's loop thread: the slot goes to the next send, the outcome to the flusher."""
        try:
            timed_out = exchange.error is not None and exchange.error.timed_out
            # A fast refusal sizes the host's line as well as an answer does; a timeout says nothing of it.
            slot.release(timed_out=timed_out, answer_s=None if timed_out else exchange.duration_ms / 1000)
        finally:
            self._settle(claimed, token, request, exchange, judge(exchange, claimed.success_body_contains))

    def _settle(
        self,
        claimed: render.Claimed,
        token: str,
        request: OutboundRequest,
        exchange: Exchange,
        error: DeliveryError | None,
    ) -> None:
        decision = decide(error, claimed.attempt_in_schedule, self.tuning)
        finished = datetime.now(UTC)
        self._outcomes.put(attempts.Outcome(claimed, token, request, exchange, error, decision, finished))

    def _reserve(self, wanted: int, *, wait: bool = True) -> int:
        wanted = max(0, min(wanted, self.tuning.max_in_flight))
        deadline = time.monotonic() + (CAPACITY_WAIT_S if wait else 0)
        with self._capacity:
            while self._room() < wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._capacity.wait(left)
            granted = max(0, min(wanted, self._room()))
            self._in_use += granted
            return granted

    def _room(self) -> int:
        """Under self._capacity: how many more sends this process takes on now.

        Sends waiting in lines hold no capacity, but a process with max_in_flight of them waiting takes none:
        they start no sooner for being here, and another process with free slots could send them. Once a
        send cost no thread, claims outran the lines: one worker's lines held 1,100 sends while the other
        idled, many were refused, and bench.delivery's 100 ms run fell from 1,190 a second to 780.
        """
        if self._waiting >= self.tuning.max_in_flight:
            return 0
        return self.tuning.max_in_flight - self._in_use

    def _take_capacity(self) -> None:
        """A send that waited in its host's line starts: it takes the capacity of the one that just ended
        there, so it does not wait for capacity (the count may go over the limit until the flush)."""
        with self._capacity:
            self._in_use += 1

    def _change_waiting(self, by: int) -> None:
        with self._capacity:
            self._waiting += by
            self._capacity.notify_all()

    def _unreserve(self, count: int) -> None:
        if count <= 0:
            return
        with self._capacity:
            self._in_use -= count
            self._capacity.notify_all()

    def _flush_forever(self) -> None:
        while not (self._closing.is_set() and self._outcomes.empty()):
            try:
                items = [self._outcomes.get(timeout=0.5)]
            except queue.Empty:
                items = []
            self._gather(items)
            batch = [item for item in items if item is not None]
            self.slots.expire()
            if batch:
                self._flush(batch)
                # A send given back from its host's line held no capacity, unless it had started (and was
                # then refused a cluster slot).
                waited = sum(isinstance(i, attempts.GiveBack) and not i.held_capacity for i in batch)
                self._unreserve(len(batch) - waited)
                if waited:
                    self._change_waiting(-waited)

    def _gather(self, items: list[attempts.Outcome | attempts.GiveBack | None]) -> None:
        """Adds to `items` (a first outcome, or nothing) what else arrives within FLUSH_GATHER_S of it, up to
        FLUSH_MAX or the close's None, so that it is written in the same flush."""
        gather_until = time.monotonic() + FLUSH_GATHER_S
        while items and items[-1] is not None and len(items) < FLUSH_MAX:
            left = gather_until - time.monotonic()
            try:
                items.append(self._outcomes.get(timeout=left) if left > 0 else self._outcomes.get_nowait())
            except queue.Empty:
                return

    def _flush(self, batch: list[attempts.Outcome | attempts.GiveBack]) -> None:
        outcomes = [item for item in batch if isinstance(item, attempts.Outcome)]
        given_back = [item for item in batch if isinstance(item, attempts.GiveBack)]
        now = datetime.now(UTC)
        for attempt in range(1, 6):
            try:
                with self.database.session() as session:
                    ready = attempts.write_outcomes(
                        session, outcomes, auto_pause_after_s=self.tuning.auto_pause_after_s, now=now
                    )
                    attempts.give_back(session, given_back, now=now)
            except Exception:  # noqa: BLE001 - the database may be restarting; the leases cover us meanwhile
                log.exception("writing %d outcomes failed (try %d of 5)", len(batch), attempt)
                time.sleep(attempt)
                continue
            self._pass_on(ready)
            metrics.settled(outcomes)
            return
        # Not recorded: the attempts stay "sending" and the leases expire, so the deliveries are sent again.
        log.error("gave up writing %d outcomes; they will be sent again", len(batch))

    def _pass_on(self, ready: Sequence[tuple[int, int]]) -> None:
        if not ready or self._hand_on is None:
            return
        try:
            self._hand_on(ready)
        except Exception:  # noqa: BLE001 - they are marked queued and due: the pump hands them out instead
            log.exception("handing on %d deliveries that were waiting their turn failed", len(ready))


class _Gate:
    """Sends offered inside the claim transaction start only once it has committed (or stand down): what
    waits for it is called when it opens, in the thread that opens it (at once, once it is open)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._go: bool | None = None
        self._waiting: list[Callable[[bool], None]] = []

    def open(self, *, go: bool) -> None:
        with self._lock:
            self._go = go
            waiting, self._waiting = self._waiting, []
        for then in waiting:
            try:
                then(go)
            except Exception:  # noqa: BLE001 - the other sends of the batch must still start
                log.exception("starting a send failed")

    def then(self, then: Callable[[bool], None]) -> None:
        with self._lock:
            go = self._go
            if go is None:
                self._waiting.append(then)
                return
        then(go)
