"""The pump: hands due deliveries to RQ every second. Redis only carries work; this is what makes that true.

It finds, in the database, deliveries that are pending, due, not leased and not queued recently: retries whose
time has come, first attempts whose job was lost (Redis flushed, enqueue failed), and deliveries whose worker
died (lease expired), each only in its turn (`claims.in_turn`). Marking them queued and selecting them is one
UPDATE (SKIP LOCKED on PostgreSQL), so several pumps can run at once without handing the same delivery out
twice in one pass.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from dispatcher.db import Database
from dispatcher.heartbeats import PumpHeartbeat
from dispatcher.queueing import LANES, enqueue_or_raise
from workers.claims import claimable, deliveries, in_turn, locked_once
from workers.settings import EngineSettings

log = logging.getLogger(__name__)

EMPTY_LANE_REHAND_S = 3.0


@dataclass(frozen=True)
class Handed:
    first: int = 0
    retry: int = 0

    @property
    def total(self) -> int:
        return self.first + self.retry


def hand_out(
    database: Database, connection: redis.Redis, tuning: EngineSettings, *, now: datetime | None = None
) -> Handed:
    """One pass; returns how many deliveries were handed to each lane."""
    now = now or datetime.now(UTC)
    stale_after = _stale_after(connection, tuning)
    with database.session() as session:
        rows = _mark_queued(session, tuning, now, stale_after)
    first = [row_id for row_id, attempts in rows if attempts == 0]
    retry = [row_id for row_id, attempts in rows if attempts > 0]
    try:
        enqueue_or_raise(connection, first)
        enqueue_or_raise(connection, retry, retry=True)
    except redis.RedisError:
        with database.session() as session:  # not queued after all: offer them again on the next pass
            session.execute(
                update(deliveries).where(deliveries.c.id.in_(first + retry)).values(queued_at=None)
            )
        raise
    return Handed(len(first), len(retry))


def run(
    database: Database,
    connection: redis.Redis,
    tuning: EngineSettings,
    *,
    once: bool = False,
    stop: threading.Event | None = None,
    heartbeat: PumpHeartbeat | None = None,
) -> None:
    stop = stop or threading.Event()
    while not stop.is_set():
        error = None
        try:
            handed = hand_out(database, connection, tuning)
        except Exception as exc:  # noqa: BLE001 - Redis or the database restarting must not end the pump
            log.exception("pump pass failed; trying again")
            handed, error = Handed(), type(exc).__name__
        if heartbeat is not None:
            _beat(heartbeat, error)
        if handed.total:
            log.info("handed out %d first attempts and %d retries", handed.first, handed.retry)
        if once:
            return
        if handed.total < tuning.pump_batch:  # a full pass means more is waiting: go again at once
            stop.wait(tuning.pump_interval_s)


def _beat(heartbeat: PumpHeartbeat, error: str | None) -> None:
    # A pump that cannot write its heartbeat still works: Redis is down, and the pass said so already.
    try:
        heartbeat.beat(passed=error is None, error=error)
    except redis.RedisError as exc:
        log.warning("pump heartbeat not written: %s", exc)


def _stale_after(connection: redis.Redis, tuning: EngineSettings) -> dict[bool, float]:
    """Seconds after which a queued delivery still due counts as lost, for first attempts and for retries.

    While a lane's queue holds jobs, a delivery may just be waiting its turn: give it `rehand_after_s`. When
    the lane is empty its job is gone (flushed, or taken by a worker that died) or running right now; handing
    it out again after a few seconds costs at most a job that finds nothing to claim.
    """
    with connection.pipeline(transaction=False) as pipe:
        for name in LANES:
            pipe.llen(Queue(name, connection=connection).key)
        first, retry = pipe.execute()
    short = min(EMPTY_LANE_REHAND_S, tuning.rehand_after_s)
    return {False: tuning.rehand_after_s if first else short, True: tuning.rehand_after_s if retry else short}


def _mark_queued(
    session: Session, tuning: EngineSettings, now: datetime, stale_after: dict[bool, float]
) -> list[tuple[int, int]]:
    def stale(retry: bool) -> ColumnElement[bool]:
        lane = deliveries.c.attempt_count > 0 if retry else deliveries.c.attempt_count == 0
        return and_(lane, deliveries.c.queued_at < now - timedelta(seconds=stale_after[retry]))

    # A delivery held back by an earlier one of its transaction is not handed out: its job would find nothing
    # to claim. It is handed on when the earlier one settles (claims.next_in_turn), or by a later pass.
    due: ColumnElement[bool] = and_(
        claimable(now), or_(deliveries.c.queued_at.is_(None), stale(False), stale(True)), in_turn()
    )
    picked = locked_once(
        select(deliveries.c.id).where(due).order_by(deliveries.c.next_attempt_at).limit(tuning.pump_batch),
        name="picked",
        postgres=session.get_bind().dialect.name == "postgresql",
    )
    statement = (
        update(deliveries)
        .where(deliveries.c.id.in_(picked), due)
        .values(queued_at=now)
        .returning(deliveries.c.id, deliveries.c.attempt_count)
    )
    return [(row.id, row.attempt_count) for row in session.execute(statement)]
