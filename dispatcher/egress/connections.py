"""HTTP/1.1 connections for the postback client, on one asyncio event loop per process (h11 reads and writes
the protocol), kept alive in a pool per vetted address.

One loop rather than a thread per request: with urllib3 in a pool of sending threads, a request cost a worker
about 0.4 ms of CPU, most of it switching threads and http.client's header parsing; on one loop with h11
about 0.07 ms (10,000 requests, 64 at a time, to bench.delivery's sink, in one script).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

import h11

# The most a receiver's status line and headers may take (h11 refuses a larger head).
MAX_HEAD_BYTES = 64 * 1024
# A kept-alive connection unused for this long is closed (receivers close theirs after 5-75 s anyway).
IDLE_S = 30.0
_CLOSED_EARLY = "the receiver closed the connection before answering in full"
_HTTP = b"HTTP/"
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([2-5][0-9][0-9])(?: ([^\r\n]*))?\r?\n")


class Closed(ConnectionError):
    """The receiver closed the connection before its answer was complete."""


class NotHttp(ConnectionError):
    """The answer does not begin as HTTP's do (another protocol's service listens there)."""


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # as received: names in their own case, repeated names repeated
    body: bytes  # the first `cap` + 1 bytes at most
    complete: bool  # the whole body was read (else the connection is not reusable)


@dataclass(frozen=True)
class Key:
    """What a kept-alive connection may be reused for: the same address, port and (for TLS) name."""

    scheme: str
    address: str
    port: int
    server_hostname: str | None


class Connection(asyncio.Protocol):
    """One connection; one request at a time (`exchange`), its answer read up to a cap."""

    def __init__(self) -> None:
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self._closed = False
        self._cap = 0
        self._body: list[bytes] = []
        self._read = 0
        # What came of the answer until its head was read: its first bytes tell HTTP from another protocol,
        # and a head h11 refuses is read from it (`_lenient`).
        self._raw = bytearray()
        # The answer's status line and headers once read, kept when its body then fails (as urllib3 did).
        self.head: tuple[int, str, list[tuple[str, str]]] | None = None

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._fail(exc or Closed(_CLOSED_EARLY))

    def eof_received(self) -> bool | None:
        self._receive(b"")  # a body that ends with the connection ends here
        return None  # close our side too

    def data_received(self, data: bytes) -> None:
        self._receive(data)

    # --- use ---

    @property
    def usable(self) -> bool:
        return not self._closed and self._h11.our_state is h11.IDLE

    async def exchange(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | None,
        cap: int,
    ) -> Answer:
        """Sends one request and waits for its answer (whose body is read up to `cap` + 1 bytes). Raises
        h11.LocalProtocolError for a request h11 will not write (nothing is sent then)."""
        self.head = None
        self._raw = bytearray()
        if self._closed or self._transport is None:
            # Closed (or it spoke unasked) between its connect, or its last answer, and now.
            raise Closed(_CLOSED_EARLY)
        data = self._h11.send(h11.Request(method=method, target=target, headers=list(headers))) or b""
        if body:
            data += self._h11.send(h11.Data(data=body)) or b""
        data += self._h11.send(h11.EndOfMessage()) or b""
        self._cap = cap
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        return await self._waiter

    def reuse(self) -> bool:
        """After a complete answer: ready for the next request, if both sides keep the connection and the
        receiver sent nothing past its answer (bytes that would otherwise be read as the next answer)."""
        h11_state = self._h11
        if self._closed or h11_state.our_state is not h11.DONE or h11_state.their_state is not h11.DONE:
            return False
        if h11_state.trailing_data[0]:
            return False
        h11_state.start_next_cycle()
        return True

    def close(self) -> None:
        """At once: a connection is dropped only when it failed, timed out, said too much or said `close`,
        and a graceful TLS close would wait up to 30 s for a receiver that may never answer (reading what it
        still sends meanwhile)."""
        self._closed = True
        if self._transport is not None:
            self._transport.abort()
        self._fail(Closed("closed"))

    # --- reading the answer ---

    def _receive(self, data: bytes) -> None:
        if self._waiter is None:
            # Nothing asked: a receiver that talks unasked (or closes) makes the connection unusable.
            self.close()
            return
        if self.head is None and len(self._raw) <= MAX_HEAD_BYTES:
            self._raw += data
            began = bytes(self._raw[: len(_HTTP)])
            if not _HTTP.startswith(began):
                # h11 waits for a whole head before it reads one: a service that greets in another protocol
                # and then waits would hold the request until its total timeout.
                self._fail(NotHttp(f"its answer is not HTTP/1.1: it began {began!r}"))
                self.close()
                return
        try:
            self._h11.receive_data(data)
            self._next_events()
        except h11.RemoteProtocolError as exc:
            if self.head is None and self._lenient():
                return
            # At the end of the stream h11 calls an unfinished answer a protocol error: it is a closed one.
            self._fail(exc if data else Closed(_CLOSED_EARLY))
            self.close()

    def _next_events(self) -> None:
        while self._waiter is not None:
            event = self._h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                raw = event.headers.raw_items()
                headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
                self.head = (event.status_code, event.reason.decode("latin-1"), headers)
            elif isinstance(event, h11.Data):
                self._body.append(event.data)
                self._read += len(event.data)
                if self._read > self._cap:
                    self._answer(complete=False)  # more than we keep: not drained, the connection is dropped
            elif isinstance(event, h11.EndOfMessage):
                self._answer(complete=True)
            elif isinstance(event, h11.ConnectionClosed):
                self._fail(Closed(_CLOSED_EARLY))
            # InformationalResponse (1xx): the real answer follows.

    def _answer(self, *, complete: bool) -> None:
        waiter, head = self._waiter, self.head
        assert waiter is not None and head is not None
        body = b"".join(self._body)[: self._cap + 1]
        self._waiter, self._body, self._read = None, [], 0
        if not waiter.done():
            waiter.set_result(Answer(*head, body, complete))
        if not complete:
            self.close()

    def _lenient(self) -> bool:
        """An answer whose head h11 refuses (`Server : x`, a line without a colon, two Content-Lengths...)
        that still begins with a status line, read as http.client read it: its status and the headers that
        can be read, the body that came with it, and the connection dropped. Refused, the receiver that took
        the postback (a 200) would get it again with every retry."""
        raw = bytes(self._raw)
        status = _STATUS_LINE.match(raw)
        if status is None or self._waiter is None:
            return False
        head, _, body = raw.partition(b"\r\n\r\n")
        headers: list[tuple[str, str]] = []
        for line in head.split(b"\r\n")[1:]:
            name, colon, value = line.partition(b":")
            if colon and name.strip():
                headers.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
        reason = (status.group(2) or b"").decode("latin-1")
        self.head = (int(status.group(1)), reason, headers)
        self._body, self._read = [body], len(body)
        self._answer(complete=False)
        return True

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Pool:
    """Kept-alive connections per `Key`, at most `keep` idle ones each, none idle for over IDLE_S; used in
    the loop's thread only."""

    def __init__(self, keep: int, tls: ssl.SSLContext) -> None:
        self._keep = keep
        self._tls = tls
        self._idle: dict[Key, list[tuple[Connection, float]]] = {}
        self._sweeping: asyncio.TimerHandle | None = None

    async def connection(self, key: Key) -> Connection:
        """An idle connection for `key`, or a new one (the caller bounds the wait for it)."""
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection, since = idle.pop()
            if _fresh(connection, since, now):
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            Connection,
            key.address,
            key.port,
            ssl=self._tls if key.scheme == "https" else None,
            server_hostname=key.server_hostname,
        )
        return connection

    def give_back(self, key: Key, connection: Connection) -> None:
        now = time.monotonic()
        idle = self._idle.setdefault(key, [])
        if connection.reuse() and len(idle) < self._keep:
            idle.append((connection, now))
        else:
            connection.close()
        if not idle:
            del self._idle[key]
        elif self._sweeping is None:
            self._sweeping = asyncio.get_running_loop().call_later(IDLE_S, self._sweep)

    def close(self) -> None:
        for idle in self._idle.values():
            for connection, _ in idle:
                connection.close()
        self._idle.clear()
        if self._sweeping is not None:
            self._sweeping.cancel()

    def _sweep(self) -> None:
        """Closes the connections idle for over IDLE_S (or closed by their receiver) of every address; again
        in IDLE_S while any are left."""
        now = time.monotonic()
        self._sweeping = None
        for key, idle in list(self._idle.items()):
            kept: list[tuple[Connection, float]] = []
            for connection, since in idle:
                if _fresh(connection, since, now):
                    kept.append((connection, since))
                else:
                    connection.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]
        if self._idle:
            self._sweeping = asyncio.get_running_loop().call_later(IDLE_S, self._sweep)


def _fresh(connection: Connection, since: float, now: float) -> bool:
    """An idle connection worth using: open, and idle (`since`) for no more than IDLE_S."""
    return connection.usable and since > now - IDLE_S
