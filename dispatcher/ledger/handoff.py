"""After commit: hand new deliveries to RQ, from one background thread per process and broker.

A request that recorded a sale only adds the new delivery ids to its process's hand-over and answers; a thread
sends them to RQ (`queueing.enqueue_deliveries`: `Queue.enqueue_many` in one MULTI/EXEC, jobs of up to 50
deliveries). When the thread is idle it sends at once, so a lone sale's postback leaves without waiting;
while a send is in flight, and until `SPACING_S` after it began, the ids offered meanwhile gather and go
together in the next one. Under load one round trip to Redis and one RQ job then carry the deliveries of many
sales, and no request ever waits on Redis, not even when it is slow or unreachable (a connect timeout would
otherwise hold every sale's answer).

Nothing depends on this thread for correctness. The deliveries are committed as pending rows before they are
offered here; if the process dies with ids still waiting, or Redis refuses them, the pump hands them over once
they are overdue (`workers.pump`), exactly as when Redis is down. `drain` waits for the hand-over (tests, and
the process's exit, so that a graceful restart leaves nothing for the pump).

State is kept per process id: a child of fork() has none of its parent's threads, so it starts its own
couriers, with a lock of its own (the parent's may have been held at the moment of fork()).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable

from flask import Flask

from dispatcher.broker import Broker, get_broker
from dispatcher.queueing import enqueue_deliveries
from dispatcher.redis_server import RedisStartError

log = logging.getLogger(__name__)

# A thread with nothing to do for this long ends (a later sale starts another): tests make many apps, and an
# idle thread would keep each broker and its Redis client alive.
IDLE_EXIT_S = 10.0
# Past this many ids waiting (Redis hanging until its socket timeout under heavy intake), new ones are left
# to the pump rather than held in memory: they are in the database either way.
MAX_WAITING = 100_000
EXIT_DRAIN_S = 5.0
# Sends to RQ are at least this far apart: under load the ids offered in between go in one send, and one job.
# A send costs this process 300-400 us of CPU whatever it carries (rq's job, redis-py's pipeline), and a job
# costs a worker about 22 round trips to Redis (rq's bookkeeping, profiled): with a send per sale, the
# hand-over cost a sale 650-1,200 us of CPU in-process and bench.intake measured sales at 0.50 of bare.
# A sale arriving when the last send is older than this (the network idle or calm) goes at once; under load a
# sale waits 10 ms on average (the old fixed gathering: 50 ms for every sale).
SPACING_S = 0.02


class _Process:
    """This process's couriers, by broker, and the lock for them and their state: a courier leaves the
    registry and a request offers it ids under the same lock, so no id is ever given to a courier that has
    just decided to stop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.couriers: dict[int, _Courier] = {}


_processes: dict[int, _Process] = {}


def _this_process() -> _Process:
    pid = os.getpid()
    found = _processes.get(pid)
    if found is None:
        # setdefault is atomic: two threads starting at once share one.
        found = _processes.setdefault(pid, _Process())
    return found


def hand_over(app: Flask, delivery_ids: Iterable[int]) -> int:
    """Offer deliveries the ledger has just created (and committed) for RQ; returns how many were taken
    (0 when there were none, or too many are waiting already and the pump will send these)."""
    pending = list(delivery_ids)
    if not pending:
        return 0
    process = _this_process()
    try:
        broker = get_broker(app)
        if id(broker) not in process.couriers:
            _start_redis(broker)
        with process.lock:
            courier = process.couriers.get(id(broker))
            if courier is None:
                courier = process.couriers[id(broker)] = _Courier(broker, process)
            return courier.offer(pending)
    except Exception:  # noqa: BLE001 - the sale is committed: its answer must not become a 500; the pump sends
        log.exception("could not offer %d deliveries to the hand-over; the pump will send them", len(pending))
        return 0


def drain(app: Flask | None = None, timeout: float = 10.0) -> bool:
    """Wait until this process has sent everything offered so far (for `app`, or for every app); True if it
    has, False on timeout."""
    deadline = time.monotonic() + timeout
    process = _this_process()
    wanted = None if app is None else id(get_broker(app))
    with process.lock:
        couriers = [courier for key, courier in process.couriers.items() if wanted in (None, key)]
    return all(courier.wait_idle(deadline) for courier in couriers)


def _start_redis(broker: Broker) -> None:
    """Start the embedded development Redis now, if the app uses it, before a courier registers its exit
    drain: exit handlers run last-registered first, so the drain then runs while that server still runs."""
    with contextlib.suppress(RedisStartError):  # the courier meets it again and logs it
        _ = broker.url


class _Courier:
    """Sends one broker's offered deliveries from its own thread (the module docstring says why)."""

    def __init__(self, broker: Broker, process: _Process) -> None:
        self._broker = broker
        self._process = process
        self._pid = os.getpid()
        self._waiting: list[int] = []
        self._sending = False
        self._changed = threading.Condition(process.lock)
        self._warned = False  # that ids are being left to the pump, since the last send
        self._last_send = 0.0  # time.monotonic() when the last send started
        thread = threading.Thread(target=self._run, name="delivery-hand-over", daemon=True)
        thread.start()
        # A graceful stop (gunicorn's worker on SIGTERM exits through here) sends what is waiting; a kill does
        # not, and the pump covers that.
        atexit.register(self._drain_at_exit)

    def offer(self, delivery_ids: list[int]) -> int:
        """Called with the process's lock held."""
        if len(self._waiting) >= MAX_WAITING:
            if not self._warned:
                log.warning("%d deliveries waiting for Redis; newer ones are left to the pump", MAX_WAITING)
                self._warned = True
            return 0
        self._waiting.extend(delivery_ids)
        self._changed.notify_all()
        return len(delivery_ids)

    def wait_idle(self, deadline: float) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._waiting and not self._sending, max(0.0, deadline - time.monotonic())
            )

    def _run(self) -> None:
        while True:
            with self._changed:
                if not self._changed.wait_for(lambda: bool(self._waiting), IDLE_EXIT_S):
                    # Under the lock: no offer can reach us from now on.
                    self._process.couriers.pop(id(self._broker), None)
                    atexit.unregister(self._drain_at_exit)  # which also lets the broker be collected
                    return
            spaced = self._last_send + SPACING_S - time.monotonic()
            if spaced > 0:  # under load: what is offered meanwhile goes along
                time.sleep(spaced)
            with self._changed:
                # Everything offered so far, at once: what is offered while this send is in flight waits
                # for the next one, and goes with the rest.
                batch, self._waiting = self._waiting, []
                self._last_send = time.monotonic()
                self._sending = True
                self._warned = False
            try:
                self._send(batch)
            finally:
                with self._changed:
                    self._sending = False
                    self._changed.notify_all()

    def _drain_at_exit(self) -> None:
        if os.getpid() == self._pid:  # a forked child inherits the registration, not the thread
            self.wait_idle(time.monotonic() + EXIT_DRAIN_S)

    def _send(self, batch: list[int]) -> None:
        try:
            enqueue_deliveries(
                self._broker.client(), batch, new=True
            )  # logs and returns 0 when Redis is down
        except RedisStartError as exc:  # the embedded development server would not start: Redis is down
            log.warning("Redis unavailable; %d deliveries stay pending for the pump: %s", len(batch), exc)
        except Exception:  # noqa: BLE001 - the thread must outlive any one failure; the pump sends these later
            log.exception("handing %d deliveries to RQ failed; they stay pending for the pump", len(batch))
