"""Receiver slots and the timeout circuit shared by every worker process through Redis.

Per host, four keys: `postback:host:<host>:slots`, a sorted set of the slots in flight anywhere (one member
per request, scored by when it expires), `postback:host:<host>:timeouts`, how many of the host's last answers
in a row were timeouts, `postback:host:<host>:silent`, set by a process whose sends there have all gone
unanswered for a second (`mark_silent`) and deleted by an answer given back through Redis or heard by that
process (`clear_silent`): a process whose sends wait because others hold every slot has none in flight to
judge the host by, and learns it from a refusal. The fourth, `postback:host:<host>:wanted`, names a process
refused a slot, for WANTED_MS after its last ask: the next slot freed goes to it rather than back to the
process that freed it, and the call that frees it tells that process so on its channel
(`postback:slots-freed:<process>`, `listen`), so that it asks for the slot at once.

Taking a slot and giving it back are one script call each, carried by one thread in the order they were made;
calls made while it waits for Redis go together in the next write, so that under load many sends share a
round trip (a call of its own each cost a send 0.5-1 ms of CPU; a round trip costs about 100 us, plus 10-25 us
a call).

A slot is a lease of LEASE_S that its process renews every RENEW_S while it holds it (one call per host and
second, whatever the number of slots), so that a worker killed mid-request frees its slots within LEASE_S.
Leases used to last the whole total timeout plus a margin (20 s at defaults): with a worker killed every
5 s, bench.chaos found the receivers' slots held by dead workers most of the time and deliveries waiting
minutes. A slot is renewed at most until its request's total timeout plus a margin has passed since it was
taken or handed on, so that a send that never ends cannot hold it for ever. Expiry is counted in the Redis
server's clock (TIME inside the scripts), never a worker host's. Both keys carry TTLs: a slot key lives as
long as its last slot, the circuit an hour after its last timeout (an answer deletes it).

A slot whose send was answered is kept ("parked") for PARK_S rather than given back at once: the next send to
the same host from this process within that time takes it without a call to Redis, and gives it back (or parks
it again) when it ends. Under load a host's sends follow each other closely, and the two calls a send cost
(take, give back) and the courier's wake-ups were the largest share of the sending threads' work. A parked
slot counts toward the host's cap like any other, so another process may wait for one: up to PARK_S plus
the renewer's interval (also PARK_S) and its own retry interval; a slot taken again and again from its parking
is given back at its first answer after REPORT_AFTER_S. A timeout is never parked (the circuit hears of it at
once); nor is a slot taken while more than half the host's slots were in use, or while the host had timeouts
in a row (`_Held.parkable`), nor one of a host whose last count from Redis was above 0. The answers a parked
slot had are not reported when it is given back: late, they would wipe timeouts counted since.

If Redis cannot be reached, callers are told so (`None`) and fall back to per-process caps; it is asked again
every few seconds, and the change is logged once each way, not per send.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

PREFIX = "postback:host:"
# How long Redis keeps a slot that its holder stopped renewing (the holder was killed or lost Redis), and
# how often a holder renews: a renewal may be late by LEASE_S - RENEW_S (a busy process, a slow round trip)
# before another process could take the slot while it is still in use.
LEASE_S = 3.0
RENEW_S = 1.0
# A slot is renewed until its request's total timeout plus this much has passed (its send is stuck).
SLOT_MARGIN_S = 5.0
# A slot is handed on within its process only while Redis is known to hold it for at least this much more.
HAND_ON_MARGIN_S = 0.5
# A slot handed from send to send within its process goes back through Redis after this long, so that a
# process waiting for the host's slots gets one (see _ACQUIRE): handed on for as long as its holder had a
# line, slots were held for 2 s and more by one process while the other's sends to the same healthy host
# waited.
HAND_ON_FOR_S = 0.5
# How long a refused process stays first for the host's next free slot unless it asks again (hosts.RETRY_S):
# told when it is freed (`listen`), it asks at once.
WANTED_MS = 500
# How long the listener waits for a message before it looks whether its process is closing, and how often it
# makes sure that its connection still carries messages.
LISTEN_WAIT_S = 0.5
LISTEN_PING_S = 5.0
CIRCUIT_MEMORY_S = 3600
# How long a slot whose send was answered is kept for this process's next send to the host. bench.delivery
# (fast sink, 2 processes): the workers' CPU a delivery fell from 0.70 ms to 0.62-0.66 with 0.1 s, and to
# 0.59-0.61 with 1 s; short, because a parked slot is one that other processes cannot take meanwhile.
PARK_S = 0.1
# A slot taken again and again from its parking is given back at its first answer after this long (its next
# send asks Redis): the circuit hears of an answer, and other processes get their turn, about this often.
REPORT_AFTER_S = 1.0
DOWN_RETRY_S = 5.0
# An answer later than this (the connection's own timeouts are 1 s) counts as Redis being unreachable.
CALL_WAIT_S = 3.0

Outcome = Literal["answer", "timeout", "unsent"]

# KEYS: slots, timeouts, silent, wanted. ARGV: token, slots per host, timeouts that trip the circuit, hold
# ms, the asking process, WANTED_MS. Returns {1 if taken else 0, the host's consecutive timeouts, the host's
# slots taken now (with this one), 1 if a process holding its slots has found it silent else 0 (asked only on
# a refusal)}.
# A process refused a slot is "wanted" (WANTED_MS, renewed by its retries): the next slot freed goes to it,
# not to the process that freed it (whose next send asks in the same round trip, and always won it).
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local timeouts = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[2])
if timeouts >= tonumber(ARGV[3]) then limit = 1 end
local taken = redis.call('ZCARD', KEYS[1])
local wanted = redis.call('GET', KEYS[4])
local other_waits = wanted and wanted ~= ARGV[5]
if taken >= limit or (other_waits and taken >= limit - 1) then
  local silent = redis.call('EXISTS', KEYS[3])
  if not other_waits and timeouts < tonumber(ARGV[3]) and silent == 0 then
    redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[6])
  end
  return {0, timeouts, taken, silent}
end
if wanted == ARGV[5] then redis.call('DEL', KEYS[4]) end
local hold = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + hold, ARGV[1])
if redis.call('PTTL', KEYS[1]) < hold then redis.call('PEXPIRE', KEYS[1], hold) end
return {1, timeouts, redis.call('ZCARD', KEYS[1]), 0}
"""

# KEYS: slots. ARGV: hold ms, then the tokens this process holds on the host. Extends each one still there
# and returns those that were not (expired: never taken again, another process may hold the place now).
_RENEW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local hold = tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then redis.call('ZADD', KEYS[1], now + hold, ARGV[i])
  else table.insert(lost, ARGV[i]) end
end
if redis.call('PTTL', KEYS[1]) < hold then redis.call('PEXPIRE', KEYS[1], hold) end
return lost
"""

# KEYS: slots, timeouts, silent, wanted. ARGV: token, outcome ('answer', 'timeout' or 'unsent'), '1' if an
# earlier send on this slot was answered (handed on without a call), circuit memory s, the releasing process,
# the host. Returns the consecutive timeouts. The process waiting first for the host's slots (wanted) is told
# on its channel (`freed_channel`) that one is free.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
local wanted = redis.call('GET', KEYS[4])
if wanted and wanted ~= ARGV[5] then redis.call('PUBLISH', 'postback:slots-freed:' .. wanted, ARGV[6]) end
if ARGV[3] == '1' or ARGV[2] == 'answer' then redis.call('DEL', KEYS[2], KEYS[3]) end
if ARGV[2] == 'timeout' then
  local timeouts = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  return timeouts
end
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""


def connect(url: str) -> redis.Redis:
    """A client for the slots, with short timeouts and no retry: a Redis that stops answering makes the caps
    per process for a while, never holds a send up. No retry because a retried round trip runs its scripts
    again: a timeout counted twice trips the circuit early, a slot taken twice holds one for nothing; a call
    that fails is answered with its error, and the next round trip connects again. Not RQ's connection, whose
    blocking reads need no timeout."""
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0))


Reply = object  # what Redis answered, or the RedisError (or OSError) that stood in the way
Command = tuple[str | int, ...]


class _Courier:
    """One thread carries every call in the order it was made, a batch at a time through one pipeline:
    whatever is waiting when a round trip ends goes in the next one. Order matters: a slot given back before
    another is asked for is free for it."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._calls: deque[tuple[Command, Callable[[Reply], None]]] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._carry, name="slots-redis", daemon=True)
        self._thread.start()

    def call(self, command: Command, done: Callable[[Reply], None]) -> bool:
        """`done(reply)` is called in the courier's thread, whatever happens (keep it short); False: closed,
        nothing will be called."""
        with self._ready:
            if self._closed:
                return False
            self._calls.append((command, done))
            self._ready.notify()
            return True

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout=5)

    def _carry(self) -> None:
        while True:
            with self._ready:
                while not self._calls and not self._closed:
                    self._ready.wait()
                batch = list(self._calls)
                self._calls.clear()
                closing = self._closed
            replies = self._round_trip([command for command, _ in batch]) if batch else []
            for (_, done), reply in zip(batch, replies, strict=True):
                try:
                    done(reply)
                except Exception:  # noqa: BLE001 - one caller's bug must not stop everyone's calls
                    log.exception("handling a receiver slot reply failed")
            if closing:
                return

    def _round_trip(self, commands: list[Command]) -> list[Reply]:
        # A pipeline without MULTI: one write and one read for the whole batch, and with raise_on_error=False
        # a call refused by Redis gets its own error in its place while the others are read on.
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)  # type: ignore[no-untyped-call]
                return list(pipe.execute(raise_on_error=False))
        except (redis.RedisError, OSError) as exc:  # its connection is dropped: a new one next time
            return [exc] * len(commands)


def slot_key(host: str) -> str:
    return f"{PREFIX}{host}:slots"


def timeouts_key(host: str) -> str:
    return f"{PREFIX}{host}:timeouts"


def silent_key(host: str) -> str:
    return f"{PREFIX}{host}:silent"


def wanted_key(host: str) -> str:
    return f"{PREFIX}{host}:wanted"


def freed_channel(process: str) -> str:
    """Where a process first in line for a host's slots hears that one was given back (see _RELEASE)."""
    return f"postback:slots-freed:{process}"


@dataclass
class _Held:
    host: str
    renew_until: float  # monotonic: past it the send is stuck, and its slot is left to expire
    # Monotonic: until when Redis is known to hold it (when the last call that extended it was sent, plus
    # a lease). Past it, the slot may have expired and gone to another process: it is not handed on.
    confirmed_until: float
    # Whether it may be parked: not if more than half the host's slots were taken when it was (where
    # processes compete for a host, a parked slot is one that another one waits for), nor if the host had
    # timeouts in a row then (its first answer must reach the circuit at once: a tripped host keeps one slot
    # in the whole cluster until then).
    parkable: bool = False
    # Monotonic: when an answer on it was first kept from the circuit (parked), None if none is. Past
    # REPORT_AFTER_S it is no longer parked: its answer is reported and the host's crowd is asked again.
    unreported_since: float | None = None
    taken_at: float = 0.0  # monotonic: when Redis gave it (handed on past HAND_ON_FOR_S, it goes back)

    def usable(self, now: float) -> bool:
        """Redis is known to hold it for HAND_ON_MARGIN_S more: it may go to another send of this process."""
        return now + HAND_ON_MARGIN_S <= self.confirmed_until


class ClusterSlots:
    def __init__(
        self, client: redis.Redis, *, per_host: int, trip_after_timeouts: int, send_s: float
    ) -> None:
        """`send_s`: the longest a request can take (the total timeout)."""
        self.per_host = per_host
        self.trip_after_timeouts = trip_after_timeouts
        self.lease_s = LEASE_S
        self.renew_s = RENEW_S
        self.renew_for_s = send_s + SLOT_MARGIN_S
        self._client = client
        self._courier = _Courier(client)
        # One random prefix per process: a generator expression would draw a new one for every token.
        prefix = self._prefix = uuid.uuid4().hex[:12]
        self._tokens = (f"{prefix}:{n}" for n in itertools.count())
        self._lock = threading.Lock()
        self._down_until: float | None = None  # set while Redis is unreachable
        self._held: dict[str, _Held] = {}  # this process's slots, by token: what the renewer extends
        # Held slots with no send on them, by host: (token, when parked), oldest first.
        self._parked: dict[str, deque[tuple[str, float]]] = {}
        # Hosts whose last count from Redis was above 0: their slots are not parked, nor taken from parking
        # (this process's view of the circuit must not be cleared by a parked slot's assumed 0).
        self._timing_out: set[str] = set()
        # Hosts whose last refusal said a process holding their slots found them silent (`silent_elsewhere`).
        self._silent: set[str] = set()
        self._closed = threading.Event()
        # Started with the first slot taken (a process that never holds one has no thread for it).
        self._renewer: threading.Thread | None = None
        self._listener: threading.Thread | None = None  # see `listen`

    def acquire(self, host: str) -> tuple[str | None, int] | None:
        """(the slot's token, or None if the host has no free slot; its consecutive timeouts), or None if
        Redis cannot be reached. Waits for Redis' answer."""
        if self.down():
            return None
        parked = self._unpark(host)
        if parked is not None:
            return parked, 0
        token, sent_at = self._new_token(), time.monotonic()
        answered = threading.Event()
        replies: list[Reply] = []

        def done(reply: Reply) -> None:
            replies.append(reply)
            answered.set()

        if not self._ask(host, token, done):
            return None  # closing: this process's caps will do
        if not answered.wait(CALL_WAIT_S):
            self._failed(redis.TimeoutError(f"no answer within {CALL_WAIT_S:g} s"))
            return None
        return self._taken(host, token, sent_at, replies[0])

    def acquire_then(self, host: str, then: Callable[[tuple[str | None, int] | None], None]) -> None:
        """`acquire` without waiting: `then` gets its answer, in the courier's thread (keep it short) or, when
        a parked slot is taken, Redis is taken for down or the courier is closing, in this one. No thread
        waits for the round trip: a thread that waited for it cost each send about as much CPU as the
        call itself."""
        if self.down():
            then(None)
            return
        parked = self._unpark(host)
        if parked is not None:  # answered here: no round trip, no courier
            then((parked, 0))
            return
        token, sent_at = self._new_token(), time.monotonic()
        if not self._ask(host, token, lambda reply: then(self._taken(host, token, sent_at, reply))):
            then(None)

    def _new_token(self) -> str:
        with self._lock:
            return next(self._tokens)

    def _ask(self, host: str, token: str, done: Callable[[Reply], None]) -> bool:
        """Sends the call that takes a slot for `token`; False if the courier is closed (nothing was sent)."""
        hold_ms = int(self.lease_s * 1000)
        keys = (slot_key(host), timeouts_key(host), silent_key(host), wanted_key(host))
        limits = (self.per_host, self.trip_after_timeouts, hold_ms, self._prefix, WANTED_MS)
        command = ("EVAL", _ACQUIRE, 4, *keys, token, *limits)
        return self._courier.call(command, done)

    def _taken(self, host: str, token: str, sent_at: float, reply: Reply) -> tuple[str | None, int] | None:
        if isinstance(reply, Exception):
            self._failed(reply)
            return None
        self._answered()
        taken, timeouts, in_use, silent = cast("list[int]", reply)  # see _ACQUIRE
        self._saw_timeouts(host, timeouts)
        if not taken:
            # A set's add and discard are each atomic under the GIL; the reply read last wins.
            if silent:
                self._silent.add(host)
            else:
                self._silent.discard(host)
            return None, timeouts
        parkable = in_use <= self.per_host // 2 and timeouts == 0
        with self._lock:
            now = time.monotonic()
            self._held[token] = _Held(
                host, now + self.renew_for_s, sent_at + self.lease_s, parkable=parkable, taken_at=now
            )
            if self._renewer is None and not self._closed.is_set():
                self._renewer = threading.Thread(target=self._renew_forever, name="slots-renew", daemon=True)
                self._renewer.start()
        return token, timeouts

    def hand_on(self, token: str) -> bool:
        """Whether a finished send's slot may go to the next send in this process without asking Redis: it
        is still held (renewed lately, not lost) and was taken less than HAND_ON_FOR_S ago, and from now it is
        renewed for a whole request again."""
        now = time.monotonic()
        with self._lock:
            held = self._held.get(token)
            if held is None or not held.usable(now) or now - held.taken_at > HAND_ON_FOR_S:
                return False
            held.renew_until = now + self.renew_for_s
            return True

    def release(
        self,
        host: str,
        token: str,
        outcome: Outcome,
        *,
        answered_before: bool,
        then: Callable[[int], None] | None = None,
    ) -> None:
        """Gives the slot back and tells the circuit how the send ended, without waiting: `then` gets the
        host's consecutive timeouts once Redis has answered. If Redis cannot be reached the slot expires on
        its own. A slot whose send was answered may be parked instead (`_park`): `then` gets 0 at once."""
        if outcome == "answer" and self._park(host, token):
            if then is not None:
                then(0)  # it has just answered: no timeouts in a row
            return
        # An answer kept from the circuit while the slot was parked is not reported late: it would wipe the
        # timeouts counted elsewhere since (a host that answered, then stopped). Only a slot taken while the
        # host had none is parked, and an answered release after REPORT_AFTER_S reports at once.
        with self._lock:  # first: a slot given back is never renewed again, whatever Redis does
            self._held.pop(token, None)
        if self.down():
            return

        def done(reply: Reply) -> None:
            if isinstance(reply, Exception):
                self._failed(reply)
                return
            self._answered()
            self._saw_timeouts(host, cast(int, reply))
            if then is not None:
                then(cast(int, reply))

        keys = (slot_key(host), timeouts_key(host), silent_key(host), wanted_key(host))
        flag = "1" if answered_before else "0"
        arguments = (token, outcome, flag, CIRCUIT_MEMORY_S, self._prefix, host)
        self._courier.call(("EVAL", _RELEASE, len(keys), *keys, *arguments), done)

    def listen(self, on_freed: Callable[[str], None]) -> None:
        """From now on `on_freed(host)` is called, in a thread of its own, when another process gives back a
        slot of a host where this one was refused and stands first in line (Redis keeps that slot for it):
        it asks at once rather than at its next retry. Polling every 50 ms for those slots was a tenth of the
        workers' CPU in bench.delivery's 100 ms run. Best effort: what is missed (Redis away, a slot whose
        lease lapsed) waits for the retry."""
        with self._lock:
            if self._listener is not None or self._closed.is_set():
                return
            self._listener = threading.Thread(
                target=self._listen_forever, args=(on_freed,), name="slots-freed", daemon=True
            )
            self._listener.start()

    def _listen_forever(self, on_freed: Callable[[str], None]) -> None:
        lost = False  # logged once when the subscription is lost, once when it is back
        while not self._closed.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(freed_channel(self._prefix))
                if lost:
                    lost = False
                    log.info("listening for freed receiver slots again")
                self._hear(pubsub, on_freed)
            except (redis.RedisError, OSError) as exc:
                if not lost:
                    lost = True
                    # Info: the caps hold meanwhile, and Redis out of reach is logged already (`_failed`).
                    log.info("lost the freed receiver slots' channel (%s): polling meanwhile", exc)
                self._closed.wait(DOWN_RETRY_S)  # Redis away: the retries stand in meanwhile
            except Exception:  # noqa: BLE001 - e.g. its client closed under it: the retries stand in
                log.exception("listening for freed receiver slots failed")
                self._closed.wait(DOWN_RETRY_S)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    pubsub.close()

    def _hear(self, pubsub: redis.client.PubSub, on_freed: Callable[[str], None]) -> None:
        """Passes on what the channel says until closing; a connection gone quiet (no answer to a PING within
        LISTEN_PING_S: a half-open connection reads as silence, not as an error) raises ConnectionError."""
        pinged_at = answered_at = time.monotonic()
        while not self._closed.is_set():
            message = pubsub.get_message(timeout=LISTEN_WAIT_S)
            now = time.monotonic()
            if message is not None and message["type"] == "pong":
                answered_at = now
            elif message is not None and message["type"] == "message":
                data = message["data"]
                try:
                    on_freed(data.decode() if isinstance(data, bytes) else str(data))
                except Exception:  # noqa: BLE001 - the caller's bug: the retries stand in, the channel stays
                    log.exception("handling a freed receiver slot failed")
            if now - pinged_at >= LISTEN_PING_S:
                if answered_at < pinged_at:
                    raise redis.ConnectionError(f"no answer to a PING within {LISTEN_PING_S:g} s")
                pubsub.ping()
                pinged_at = now

    def mark_silent(self, host: str) -> bool:
        """Tells the other processes, without waiting, that this one's sends to `host` have all gone
        unanswered for a while: those refused a slot there then give up waiting for one. Kept for a whole
        request's time (by then its sends have timed out and the circuit knows), unless the host answers."""
        if self.down():
            return False
        command: Command = ("SET", silent_key(host), 1, "PX", int(self.renew_for_s * 1000))
        return self._courier.call(command, self._marked)

    def clear_silent(self, host: str) -> None:
        """The host answers again (`mark_silent` said otherwise): without waiting."""
        if not self.down():
            self._courier.call(("DEL", silent_key(host)), self._marked)

    def _marked(self, reply: Reply) -> None:
        if isinstance(reply, Exception):
            self._failed(reply)
        else:
            self._answered()

    def silent_elsewhere(self, host: str) -> bool:
        """Whether the last refusal of a slot at `host` said a process holding its slots found it silent."""
        return host in self._silent

    def close(self) -> None:
        """Gives back the parked slots, sends what was asked (slots given back) and stops."""
        with self._lock:
            self._closed.set()
            renewer = self._renewer
        if renewer is not None:
            renewer.join(timeout=5)
        if self._listener is not None:
            self._listener.join(timeout=5)
        self._give_back_parked(everything=True)
        self._courier.close()

    def parked(self, host: str) -> int:
        """How many of the host's slots this process holds with no send on them."""
        with self._lock:
            return len(self._parked.get(host, ()))

    def _saw_timeouts(self, host: str, timeouts: int) -> None:
        if (timeouts > 0) == (host in self._timing_out):
            return  # nothing new (the usual case: a look without the lock, on every reply)
        with self._lock:
            if timeouts > 0:
                self._timing_out.add(host)
            else:
                self._timing_out.discard(host)

    def _park(self, host: str, token: str) -> bool:
        """Keeps an answered send's slot for the next send to the host, if it may be parked (`_Held`), Redis
        is known to hold it long enough, its answers have not been kept from the circuit for longer than
        REPORT_AFTER_S and this process is not closing; False: give it back as usual."""
        now = time.monotonic()
        with self._lock:
            held = self._held.get(token)
            if (
                self._closed.is_set()
                or held is None
                or not held.parkable
                or host in self._timing_out
                or not held.usable(now)
                or (held.unreported_since is not None and now - held.unreported_since > REPORT_AFTER_S)
                # Kept as long as that, it goes back through Redis as a slot handed on does (HAND_ON_FOR_S):
                # parked, its process's next send took it straight back from there.
                or now - held.taken_at > HAND_ON_FOR_S
            ):
                return False
            if held.unreported_since is None:
                held.unreported_since = now
            self._parked.setdefault(host, deque()).append((token, now))
        return True

    def _unpark(self, host: str) -> str | None:
        """The host's most recently parked slot, now renewed for a whole request, or None. Those found on the
        way that may not be used any more are given back (before any call that asks Redis for a slot, on the
        same line: when the newest is stale, all of the host's are); one Redis no longer holds (lost while
        it could not be reached) is dropped."""
        now = time.monotonic()
        stale: list[str] = []
        found: str | None = None
        with self._lock:
            parked = self._parked.get(host)
            timing_out = host in self._timing_out
            while parked and found is None:
                token, parked_at = parked.pop()
                held = self._held.get(token)
                if held is None:
                    continue
                if timing_out or now - parked_at > PARK_S or not held.usable(now):
                    stale.append(token)
                else:
                    held.renew_until = now + self.renew_for_s
                    found = token
            if not parked:
                self._parked.pop(host, None)
        for token in stale:
            self.release(host, token, "unsent", answered_before=False)
        return found

    def _give_back_parked(self, *, everything: bool = False) -> None:
        """Gives back the slots parked for longer than PARK_S (all of them, at close)."""
        now = time.monotonic()
        expired: list[tuple[str, str]] = []
        with self._lock:
            for host, parked in list(self._parked.items()):
                while parked and (everything or now - parked[0][1] > PARK_S):
                    expired.append((host, parked.popleft()[0]))
                if not parked:
                    del self._parked[host]
        for host, token in expired:
            self.release(host, token, "unsent", answered_before=False)  # no send ends here

    def _renew_forever(self) -> None:
        # Wakes every PARK_S to give back parked slots on time; renews every renew_s.
        renewed_at = time.monotonic()
        while not self._closed.wait(min(PARK_S, self.renew_s)):
            try:
                self._give_back_parked()
                if time.monotonic() - renewed_at >= self.renew_s:
                    renewed_at = time.monotonic()
                    self.renew()
            except Exception:  # noqa: BLE001 - the thread must go on: without it every lease lapses
                log.exception("renewing the receiver slots failed")

    def renew(self) -> None:
        """Extends the lease of every slot this process holds, one call per host, without waiting; a slot
        whose send has outlived its total timeout is left to expire, and one Redis says is gone (it expired
        while Redis could not be reached) is no longer handed on."""
        now = time.monotonic()
        by_host: dict[str, list[str]] = {}
        with self._lock:
            for token, held in list(self._held.items()):
                if now > held.renew_until:
                    del self._held[token]
                else:
                    by_host.setdefault(held.host, []).append(token)
        # Sent even while Redis is taken for down: a lease (3 s) is shorter than that spell (5 s), and a
        # renewal that gets through is as good a probe as any.
        hold_ms = int(self.lease_s * 1000)
        sent_at = time.monotonic()
        for host, tokens in by_host.items():
            command: Command = ("EVAL", _RENEW, 1, slot_key(host), hold_ms, *tokens)
            self._courier.call(command, functools.partial(self._renewed, tokens=tokens, sent_at=sent_at))

    def _renewed(self, reply: Reply, *, tokens: list[str], sent_at: float) -> None:
        if isinstance(reply, Exception):
            self._failed(reply)
            return
        self._answered()
        lost = {t.decode() if isinstance(t, bytes) else str(t) for t in cast("list[object]", reply)}
        with self._lock:
            for token in tokens:
                if token in lost:
                    self._held.pop(token, None)
                elif (held := self._held.get(token)) is not None:
                    held.confirmed_until = max(held.confirmed_until, sent_at + self.lease_s)

    def unreachable(self) -> bool:
        """Whether Redis failed a call less than DOWN_RETRY_S ago (a look only: see `down`)."""
        down_until = self._down_until
        return down_until is not None and time.monotonic() < down_until

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

    def _failed(self, exc: BaseException) -> None:
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
