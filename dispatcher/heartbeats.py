"""Who is delivering: the RQ workers in rq's own registry, and the pumps' heartbeats in Redis.

Workers are read through rq's public `Worker.all`: a worker is listed from its birth until it registers its
death (a clean stop) or until its key expires, which happens when no heartbeat came for the worker's TTL plus
60 s (`workers.worker.WORKER_TTL_S`; a worker in the middle of a job has the job's timeout plus 60 s). So a
killed worker is listed for up to two minutes after it died; its age of heartbeat shows it.

The pump has no registry of its own in rq, so it keeps one here: a hash per pump with an expiry of a few
pump intervals, renewed at each pass, and a set naming them (rq's pattern). A pump that stops cleanly removes
its own; a killed one disappears when its hash expires. `dispatcher` writes nothing here itself: the pump
(`workers.pump`) calls `PumpHeartbeat`, the console and `/readyz` call `read`.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from rq import Worker

from dispatcher.queueing import LANES

PUMPS_KEY = "dispatcher:pumps"
PUMP_KEY_PREFIX = "dispatcher:pump:"


@dataclass(frozen=True)
class WorkerBeat:
    name: str
    host: str
    pid: int | None
    queues: tuple[str, ...]
    state: str
    last_heartbeat: datetime | None

    def age_s(self, now: datetime) -> float | None:
        return _age(self.last_heartbeat, now)


@dataclass(frozen=True)
class PumpBeat:
    name: str
    host: str
    pid: int | None
    started_at: datetime | None
    beat_at: datetime | None
    last_pass_at: datetime | None  # the last pass that reached the database and Redis
    last_error: str | None  # the last pass's failure, if it failed

    def age_s(self, now: datetime) -> float | None:
        return _age(self.beat_at, now)

    def pass_age_s(self, now: datetime) -> float | None:
        return _age(self.last_pass_at, now)


@dataclass(frozen=True)
class Liveness:
    workers: list[WorkerBeat]
    pumps: list[PumpBeat]


def read(client: redis.Redis) -> Liveness:
    """Every worker of our queues and every pump alive now. Raises RedisError when Redis cannot be read."""
    return Liveness(workers=_workers(client), pumps=_pumps(client))


def _workers(client: redis.Redis) -> list[WorkerBeat]:
    found = []
    for worker in Worker.all(connection=client):
        queues = tuple(worker.queue_names())
        if not set(queues) & set(LANES):  # another application's worker on the same Redis
            continue
        found.append(
            WorkerBeat(
                name=worker.name,
                host=worker.hostname or "?",
                pid=worker.pid,
                queues=queues,
                state=str(worker.get_state()),
                last_heartbeat=worker.last_heartbeat,
            )
        )
    return sorted(found, key=lambda beat: (beat.host, beat.name))


def _pumps(client: redis.Redis) -> list[PumpBeat]:
    names = sorted(_text(name) for name in client.smembers(PUMPS_KEY))
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(PUMP_KEY_PREFIX + name)
        rows: list[dict[bytes, bytes]] = pipe.execute()
    gone = [name for name, row in zip(names, rows, strict=True) if not row]
    if gone:  # expired: a pump that died without saying so
        client.srem(PUMPS_KEY, *gone)
    return [_pump(name, row) for name, row in zip(names, rows, strict=True) if row]


def _pump(name: str, row: dict[bytes, bytes]) -> PumpBeat:
    fields = {_text(key): _text(value) for key, value in row.items()}
    pid = fields.get("pid", "")
    return PumpBeat(
        name=name,
        host=fields.get("host") or "?",
        pid=int(pid) if pid.isdigit() else None,
        started_at=_time(fields.get("started_at")),
        beat_at=_time(fields.get("beat_at")),
        last_pass_at=_time(fields.get("last_pass_at")),
        last_error=fields.get("last_error") or None,
    )


class PumpHeartbeat:
    """One pump's entry: `beat()` after each pass (failed or not) renews it for `ttl_s` seconds."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.name = f"{self.host}-{self.pid}-{uuid.uuid4().hex[:6]}"
        self.key = PUMP_KEY_PREFIX + self.name
        self.started_at = datetime.now(UTC)
        self.last_pass_at: datetime | None = None

    def beat(self, *, passed: bool, error: str | None = None) -> None:
        """Raises RedisError: the caller decides whether a missed heartbeat matters."""
        now = datetime.now(UTC)
        if passed:
            self.last_pass_at = now
        fields = {
            "host": self.host,
            "pid": str(self.pid),
            "started_at": self.started_at.isoformat(),
            "beat_at": now.isoformat(),
            "last_pass_at": self.last_pass_at.isoformat() if self.last_pass_at else "",
            "last_error": error or "",
        }
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, mapping=fields)  # type: ignore[arg-type]
            pipe.expire(self.key, self.ttl_s)
            pipe.sadd(PUMPS_KEY, self.name)
            pipe.execute()

    def stop(self) -> None:
        """A clean stop: gone at once rather than when the heartbeat expires."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.key)
            pipe.srem(PUMPS_KEY, self.name)
            pipe.execute()


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
