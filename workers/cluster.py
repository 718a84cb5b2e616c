"""Receiver slots and the timeout circuit shared by every worker process through Redis.

Per host, two keys: `postback:host:<host>:slots`, a sorted set of the slots in flight anywhere (one member per
request, scored by when it expires), and `postback:host:<host>:timeouts`, how many of the host's last answers
in a row were timeouts. Taking a slot and giving it back are one script call each. Expiry is counted in the
Redis server's clock (TIME inside the script), never a worker host's, so that a worker killed mid-request
frees its slots after the total timeout plus a margin whichever machine it ran on. Both keys carry TTLs:
a slot key lives as long as its last slot, the circuit an hour after its last timeout (an answer deletes it).

If Redis cannot be reached, callers are told so (`None`) and fall back to per-process caps; it is asked again
every few seconds, and the change is logged once each way, not per send.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from typing import Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

PREFIX = "postback:host:"
# A slot outlives the longest request by this much before Redis frees it on its own (its holder was killed).
SLOT_MARGIN_S = 5.0
# A slot handed from a finished send to the next one in this process without asking Redis must still
# have a whole request plus this much ahead of it.
REUSE_SLACK_S = 1.0
CIRCUIT_MEMORY_S = 3600
DOWN_RETRY_S = 5.0

Outcome = Literal["answer", "timeout", "unsent"]

# KEYS: slots, timeouts. ARGV: token, slots per host, timeouts that trip the circuit, hold ms.
# Returns {1 if taken else 0, the host's consecutive timeouts}.
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local timeouts = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[2])
if timeouts >= tonumber(ARGV[3]) then limit = 1 end
if redis.call('ZCARD', KEYS[1]) >= limit then return {0, timeouts} end
local hold = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + hold, ARGV[1])
if redis.call('PTTL', KEYS[1]) < hold then redis.call('PEXPIRE', KEYS[1], hold) end
return {1, timeouts}
"""

# KEYS: slots, timeouts. ARGV: token, outcome ('answer', 'timeout' or 'unsent'), '1' if an earlier send on
# this slot was answered (handed on without a call), circuit memory s. Returns the consecutive timeouts.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[3] == '1' or ARGV[2] == 'answer' then redis.call('DEL', KEYS[2]) end
if ARGV[2] == 'timeout' then
  local timeouts = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  return timeouts
end
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""


def connect(url: str) -> redis.Redis:
    """A client for the slots, with short timeouts and one quick retry (the library's default retries for
    seconds): a Redis that stops answering makes the caps per process for a while, never holds a send up.
    Not RQ's connection, whose blocking reads need no timeout."""
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 1))


def slot_key(host: str) -> str:
    return f"{PREFIX}{host}:slots"


def timeouts_key(host: str) -> str:
    return f"{PREFIX}{host}:timeouts"


class ClusterSlots:
    def __init__(
        self, client: redis.Redis, *, per_host: int, trip_after_timeouts: int, send_s: float
    ) -> None:
        """`send_s`: the longest a request can take (the total timeout)."""
        self.per_host = per_host
        self.trip_after_timeouts = trip_after_timeouts
        self.hold_s = send_s + SLOT_MARGIN_S
        self.reuse_s = self.hold_s - send_s - REUSE_SLACK_S
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._tokens = (f"{uuid.uuid4().hex[:12]}:{n}" for n in itertools.count())
        self._lock = threading.Lock()
        self._down_until: float | None = None  # set while Redis is unreachable

    def acquire(self, host: str) -> tuple[str | None, int] | None:
        """(the slot's token, or None if the host has no free slot; its consecutive timeouts), or None if
        Redis cannot be reached."""
        if self.down():
            return None
        with self._lock:
            token = next(self._tokens)
        args: list[str | int] = [token, self.per_host, self.trip_after_timeouts, int(self.hold_s * 1000)]
        try:
            taken, timeouts = self._acquire(keys=[slot_key(host), timeouts_key(host)], args=args)
        except redis.RedisError as exc:
            self._failed(exc)
            return None
        self._answered()
        return (token if taken else None), int(timeouts)

    def release(self, host: str, token: str, outcome: Outcome, *, answered_before: bool) -> int | None:
        """Gives the slot back and tells the circuit how the send ended; the host's consecutive timeouts,
        or None if Redis cannot be reached (the slot then expires on its own)."""
        if self.down():
            return None
        args: list[str | int] = [token, outcome, "1" if answered_before else "0", CIRCUIT_MEMORY_S]
        try:
            timeouts = self._release(keys=[slot_key(host), timeouts_key(host)], args=args)
        except redis.RedisError as exc:
            self._failed(exc)
            return None
        self._answered()
        return int(timeouts)

    def down(self) -> bool:
        """Redis failed a call less than DOWN_RETRY_S ago: callers use per-process caps meanwhile. Once that
        has passed, one caller (this one) asks it again while the others still see it down."""
        if self._down_until is None:
            return False
        now = time.monotonic()
        with self._lock:
            if self._down_until is None:
                return False
            if now < self._down_until:
                return True
            self._down_until = now + DOWN_RETRY_S
            return False

    def _failed(self, exc: redis.RedisError) -> None:
        with self._lock:
            if self._down_until is None:
                log.warning(
                    "Redis cannot be reached (%s): receiver caps and the timeout circuit are per process "
                    "until it answers again",
                    exc,
                )
            self._down_until = time.monotonic() + DOWN_RETRY_S

    def _answered(self) -> None:
        if self._down_until is None:
            return
        with self._lock:
            if self._down_until is not None:
                self._down_until = None
                log.warning("Redis answers again: receiver caps and the timeout circuit are cluster-wide")
