"""After commit: hand new deliveries to RQ, from one background thread per process and app.

A request that recorded a sale only adds the new delivery ids to its process's hand-over and answers; a thread
takes everything waiting and sends it to RQ in one MULTI (`queueing.enqueue_deliveries`, jobs of up to 50
deliveries). Under load, one round trip to Redis then carries the deliveries of many sales: the hand-over's
cost per sale (a Redis round trip, 90-215 us of CPU) falls to about 40 us (bench.intake, the gunicorn workers'
CPU against no hand-over at all), and no request ever waits on Redis, not even when it is slow or unreachable
(a connect timeout used to hold every sale's answer). The thread sends 50 ms after the first id reaches it,
with whatever came meanwhile: a delivery waits no longer for a batch to fill, whatever the load.

Nothing depends on this thread for correctness. The deliveries are committed as pending rows before they are
offered here; if the process dies with ids still waiting, or Redis refuses them, the pump hands them over once
they are overdue (`workers.pump`), exactly as when Redis is down. `drain` waits for the hand-over (tests, and
the process's exit, so that a graceful restart leaves nothing for the pump).
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

from dispatcher.broker import get_broker
from dispatcher.queueing import enqueue_deliveries
from dispatcher.redis_server import RedisStartError

log = logging.getLogger(__name__)

# A thread with nothing to do for this long ends (a later sale starts another): tests make many apps, and an
# idle thread would keep each app, its engine and its files alive.
IDLE_EXIT_S = 10.0
# Past this many ids waiting (Redis hanging until its socket timeout under heavy intake), new ones are left
# to the pump rather than held in memory: they are in the database either way.
MAX_WAITING = 100_000
EXIT_DRAIN_S = 5.0
# How long the thread gathers after the first id: the sales recorded meanwhile share its round trip to Redis
# and their job. Waking per sale cost about as much CPU as the round trip it saved; at 10 ms the thread still
# took 4.3% of its process's CPU under bench.intake (45 us a sale, 7 sales a batch), at 50 ms 1.5%. A
# postback leaves at most 50 ms later, which no receiver notices.
GATHER_S = 0.05

# One lock for the registry and every courier's state: a courier leaves the registry and a request offers it
# ids under the same lock, so no id is ever given to a courier that has just decided to stop.
_lock = threading.Lock()
_couriers: dict[tuple[int, int], _Courier] = {}


def hand_over(app: Flask, delivery_ids: Iterable[int]) -> int:
    """Offer deliveries the ledger has just created (and committed) for RQ; returns how many were taken
    (0 when there were none, or too many are waiting already and the pump will send these)."""
    pending = list(delivery_ids)
    if not pending:
        return 0
    app = _real(app)
    # Keyed by process too: after fork() the parent's thread does not exist in the child.
    key = (os.getpid(), id(app))
    try:
        if key not in _couriers:
            _start_redis(app)
        with _lock:
            courier = _couriers.get(key)
            if courier is None:
                courier = _couriers[key] = _Courier(app, key)
            return courier.offer(pending)
    except Exception:  # noqa: BLE001 - the sale is committed: its answer must not become a 500; the pump sends
        log.exception("could not offer %d deliveries to the hand-over; the pump will send them", len(pending))
        return 0


def drain(app: Flask | None = None, timeout: float = 10.0) -> bool:
    """Wait until this process has sent everything offered so far (for `app`, or for every app); True if it
    has, False on timeout."""
    deadline = time.monotonic() + timeout
    wanted = None if app is None else id(_real(app))
    with _lock:
        couriers = [
            courier
            for (pid, app_id), courier in _couriers.items()
            if pid == os.getpid() and wanted in (None, app_id)
        ]
    return all(courier.wait_idle(deadline) for courier in couriers)


def _start_redis(app: Flask) -> None:
    """Start the embedded development Redis now, if the app uses it, before a courier registers its exit
    drain: exit handlers run last-registered first, so the drain then runs while that server still runs."""
    with contextlib.suppress(RedisStartError):  # the courier meets it again and logs it
        _ = get_broker(app).url


def _real(app: Flask) -> Flask:
    # Views pass `current_app`, a proxy valid only in their request: the thread needs the app itself.
    real: Flask = getattr(app, "_get_current_object", lambda: app)()
    return real


class _Courier:
    """Sends one app's offered deliveries from its own thread (the module docstring says why)."""

    def __init__(self, app: Flask, key: tuple[int, int]) -> None:
        self._app = app
        self._key = key
        self._waiting: list[int] = []
        self._sending = False
        self._changed = threading.Condition(_lock)
        self._warned = False  # that ids are being left to the pump, since the last send
        thread = threading.Thread(target=self._run, name="delivery-hand-over", daemon=True)
        thread.start()
        # A graceful stop (gunicorn's worker on SIGTERM exits through here) sends what is waiting; a kill does
        # not, and the pump covers that.
        atexit.register(self._drain_at_exit)

    def offer(self, delivery_ids: list[int]) -> int:
        """Called with `_lock` held."""
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
                    _couriers.pop(self._key, None)  # under the lock: no offer can reach us from now on
                    atexit.unregister(self._drain_at_exit)  # which also lets the app be collected
                    return
            time.sleep(GATHER_S)
            with self._changed:
                batch, self._waiting = self._waiting, []
                self._sending = True
                self._warned = False
            try:
                self._send(batch)
            finally:
                with self._changed:
                    self._sending = False
                    self._changed.notify_all()

    def _drain_at_exit(self) -> None:
        if os.getpid() == self._key[0]:  # a forked child inherits the registration, not the thread
            self.wait_idle(time.monotonic() + EXIT_DRAIN_S)

    def _send(self, batch: list[int]) -> None:
        try:
            client = get_broker(self._app).client()
            enqueue_deliveries(client, batch, new=True)  # logs and returns 0 when Redis is down
        except RedisStartError as exc:  # the embedded development server would not start: Redis is down
            log.warning("Redis unavailable; %d deliveries stay pending for the pump: %s", len(batch), exc)
        except Exception:  # noqa: BLE001 - the thread must outlive any one failure; the pump sends these later
            log.exception("handing %d deliveries to RQ failed; they stay pending for the pump", len(batch))


def _after_fork_in_child() -> None:
    # The parent's threads do not exist in a child: its couriers are gone, and the lock may have been held by
    # one of them at the moment of fork() (the child would then wait for it forever).
    global _lock
    _lock = threading.Lock()
    _couriers.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
