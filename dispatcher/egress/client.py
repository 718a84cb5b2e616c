"""The HTTP client for postbacks: SSRF-safe, time-bounded, no redirects, capped reads, reused connections.

Requests go out on one asyncio event loop per process (`connections`: h11 over asyncio's transports), not a
thread each: with urllib3 in a pool of sending threads, switching threads and parsing headers were most of a
worker's CPU (see `connections`).

Safety: the host is resolved here, every address it resolves to is vetted (`ssrf.vet`) and the connection is
made to the vetted address itself; the name goes only into the Host header and, for TLS, into SNI and the
certificate check (`server_hostname`). A DNS answer that changes afterwards cannot move a connection
elsewhere. A vetted answer is reused for VETTED_FOR_S, the way the kept-alive connections to it are. Every
request ends within the total timeout, however slowly a receiver drips its answer (the loop's own timer, no
watchdog thread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import functools
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import certifi
import h11
import urllib3
from urllib3.exceptions import LocationParseError

from dispatcher.config import IPNetwork
from dispatcher.egress import connections, fields, ssrf, urls
from dispatcher.egress.errors import DeliveryError
from dispatcher.models import ErrorClass
from dispatcher.models.deliveries import RESPONSE_EXCERPT_BYTES

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}
# How long a vetted DNS answer is used for new requests (connections kept alive to it live longer anyway).
VETTED_FOR_S = 30.0
# How long a vetted answer is still used while a new lookup of the name runs (the name vetted then).
STALE_FOR_S = 300.0


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass
class Exchange:
    """What happened on the wire: a response (any status), or the transport error that prevented one."""

    duration_ms: int = 0
    resolved_ip: str | None = None
    status_code: int | None = None
    reason: str = ""
    headers: dict[str, str] | None = None
    excerpt: str | None = None
    error: DeliveryError | None = None


class EgressClient:
    """Thread-safe; one per worker process. Requests go out on the client's own event loop (a thread of its
    own, started at the first request): `start` from the engine, `send` (which waits) from anyone else."""

    def __init__(
        self,
        allowed_networks: Sequence[IPNetwork] = (),
        *,
        connect_timeout_s: float = 5.0,
        total_timeout_s: float = 15.0,
        resolver: ssrf.Resolver = ssrf.system_resolver,
        pool_size: int = 128,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`pool_size`: the idle connections kept per receiver address. `tls`: the certificates trusted (tests
        bring their own authority; by default certifi's bundle)."""
        self.connect_timeout_s = connect_timeout_s
        self.total_timeout_s = total_timeout_s
        self._addresses = _VettedAddresses(resolver, allowed_networks)
        self._pool_size = pool_size
        self._tls = tls or ssl.create_default_context(cafile=certifi.where())
        self._lock = threading.Lock()
        self._sending: _Sending | None = None

    def send(self, request: OutboundRequest) -> Exchange:
        """Sends `request` and waits for the exchange (not from the client's own loop)."""
        sending = self._running()
        future = asyncio.run_coroutine_threadsafe(self._tracked(sending, request), sending.loop)
        try:
            # Every exchange ends within the total timeout; longer, the loop was stopped under it (`close`).
            return future.result(timeout=self.total_timeout_s + 5)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            future.cancel()
            error = DeliveryError(
                ErrorClass.CONNECT, "internal error: the client was closed", permanent=False
            )
            return Exchange(error=error)

    def start(self, request: OutboundRequest, done: Callable[[Exchange], None]) -> None:
        """Sends `request` without waiting: `done` gets the exchange in the client's loop thread, so it must
        be short and never block. After `close`, a request started meanwhile may never call `done`."""
        sending = self._running()
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            sending.loop.call_soon_threadsafe(self._start, sending, request, done)

    def close(self) -> None:
        """Closes the kept-alive connections and stops the loop; requests in flight end unanswered. The next
        request starts a new loop."""
        with self._lock:
            sending, self._sending = self._sending, None
        if sending is not None:
            sending.stop()

    def _running(self) -> _Sending:
        with self._lock:
            if self._sending is None:
                self._sending = _Sending(connections.Pool(self._pool_size, self._tls))
            return self._sending

    def _start(self, sending: _Sending, request: OutboundRequest, done: Callable[[Exchange], None]) -> None:
        sending.track(sending.loop.create_task(self._exchange_then(sending, request, done)))

    async def _exchange_then(
        self, sending: _Sending, request: OutboundRequest, done: Callable[[Exchange], None]
    ) -> None:
        try:
            exchange = await self._exchange(sending, request)
        except Exception as exc:  # noqa: BLE001 - a bug here must still reach `done` (as a retry)
            log.exception("sending %s failed unexpectedly", request.url)
            error = DeliveryError(ErrorClass.CONNECT, f"internal error: {exc!r}", permanent=False)
            exchange = Exchange(error=error)
        try:
            done(exchange)
        except Exception:  # noqa: BLE001 - the caller's bug; the loop must go on for every other request
            log.exception("handling the exchange with %s failed", request.url)

    async def _tracked(self, sending: _Sending, request: OutboundRequest) -> Exchange:
        """`send`'s exchange, cancelled with the others by `close`."""
        task = asyncio.current_task()
        if task is not None:
            sending.track(task)
        return await self._exchange(sending, request)

    async def _exchange(self, sending: _Sending, request: OutboundRequest) -> Exchange:
        started = time.monotonic()
        exchange = Exchange()
        try:
            await self._exchange_into(sending, request, started, exchange)
        except DeliveryError as exc:
            exchange.error = exc
        finally:
            exchange.duration_ms = int((time.monotonic() - started) * 1000)
        return exchange

    async def _exchange_into(
        self, sending: _Sending, request: OutboundRequest, started: float, exchange: Exchange
    ) -> None:
        target = _target(request.url, request.headers)
        headers = _request_headers(target, request)
        https = target.scheme == "https"
        where = target.host_header
        phase = "resolve"
        connection: connections.Connection | None = None
        answer: connections.Answer | None = None
        try:
            # Everything, the DNS lookup included, within the total timeout.
            async with asyncio.timeout(max(0.0, started + self.total_timeout_s - time.monotonic())):
                address = await self._address(sending, target.host, target.port)
                exchange.resolved_ip = address
                where = f"{target.host_header} ({address})"
                key = connections.Key(target.scheme, address, target.port, target.host if https else None)
                phase = "connect"
                try:
                    async with asyncio.timeout(self.connect_timeout_s):
                        connection = await sending.pool.connection(key)
                except TimeoutError:
                    raise DeliveryError(
                        ErrorClass.TIMEOUT,
                        f"connecting to {where} took over {self.connect_timeout_s:g} s",
                        permanent=False,
                    ) from None
                except OSError as exc:  # ssl.SSLError is one
                    raise _connect_error(exc, where) from None
                phase = "answer"
                answer = await connection.exchange(
                    request.method, target.path, headers, request.body, RESPONSE_EXCERPT_BYTES
                )
        except TimeoutError:
            if phase == "resolve":
                raise DeliveryError(
                    ErrorClass.DNS,
                    f"resolving {target.host!r} took over {self.total_timeout_s:g} s",
                    permanent=False,
                    timed_out=True,
                ) from None
            raise _with_head(
                exchange,
                connection,
                DeliveryError(
                    ErrorClass.TIMEOUT,
                    f"no complete answer within {self.total_timeout_s:g} s",
                    permanent=False,
                ),
            ) from None
        except h11.LocalProtocolError as exc:  # a request h11 will not write: the postback's fault
            raise _unbuildable(exc) from None
        except (OSError, h11.RemoteProtocolError) as exc:
            raise _with_head(exchange, connection, _broken(exc, where)) from None
        finally:
            if connection is not None and answer is None:
                connection.close()  # failed or timed out mid-request: never reused
        exchange.status_code = answer.status
        exchange.reason = answer.reason
        exchange.headers = _headers(answer.headers)
        exchange.excerpt = answer.body[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace")
        if answer.complete and connection is not None:
            sending.pool.give_back(key, connection)

    async def _address(self, sending: _Sending, host: str, port: int) -> str:
        """The vetted address to connect to: known, or looked up on the resolver threads (the lookup blocks),
        one lookup at a time per host and port however many requests wait for it. An answer older than
        VETTED_FOR_S is still used while a new lookup runs (up to STALE_FOR_S): a host that answers never
        waits behind other hosts' slow lookups for its own."""
        key = (host, port)
        try:
            known = self._addresses.known(host, port)
            if known is not None:
                address, fresh = known
                if not fresh and key not in sending.lookups:
                    self._look_up(sending, host, port)  # in the background; meanwhile the one vetted last
                return address
            if _is_address(host):  # nothing to look up: vetted here, not behind the resolver threads
                return self._addresses.vetted(host, port)
            lookup = sending.lookups.get(key) or self._look_up(sending, host, port)
            sending.waiting[key] = sending.waiting.get(key, 0) + 1
            try:
                # Shielded: a request that gives up waiting does not cancel the lookup others wait for...
                return await asyncio.shield(lookup)
            finally:
                sending.waiting[key] -= 1
                if not sending.waiting[key]:
                    del sending.waiting[key]
                    lookup.cancel()  # ...but the last one does, if it has not started (done: no effect)
        except (ssrf.Refused, ssrf.ResolveFailed) as exc:
            permanent = isinstance(exc, ssrf.Refused)
            raise DeliveryError(
                ErrorClass.SSRF if permanent else ErrorClass.DNS, str(exc), permanent=permanent
            ) from None

    def _look_up(self, sending: _Sending, host: str, port: int) -> asyncio.Future[str]:
        lookup = sending.loop.run_in_executor(sending.resolvers, self._addresses.vetted, host, port)
        sending.lookups[(host, port)] = lookup
        lookup.add_done_callback(functools.partial(_looked_up, sending.lookups, (host, port)))
        return lookup


# Lookups at once per process: a publisher whose name servers do not answer holds one thread a lookup (5-20
# s each) and must not hold up the other hosts' lookups.
RESOLVER_THREADS = 32


class _Sending:
    """One run of the client's event loop: its thread, kept-alive connections, requests, DNS lookups."""

    def __init__(self, pool: connections.Pool) -> None:
        self.pool = pool
        self.loop = asyncio.new_event_loop()
        self.resolvers = concurrent.futures.ThreadPoolExecutor(
            RESOLVER_THREADS, thread_name_prefix="egress-dns"
        )
        self.lookups: dict[tuple[str, int], asyncio.Future[str]] = {}
        self.waiting: dict[tuple[str, int], int] = {}  # requests waiting for each lookup
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, name="egress", daemon=True)
        self._thread.start()

    def track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)  # the loop keeps only a weak reference to its tasks
        task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, concurrent.futures.TimeoutError):
            asyncio.run_coroutine_threadsafe(self._cancel(), self.loop).result(timeout=5)
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.resolvers.shutdown(wait=False, cancel_futures=True)
        if not self._thread.is_alive():
            self.loop.close()

    async def _cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.pool.close()


def _looked_up(
    lookups: dict[tuple[str, int], asyncio.Future[str]], key: tuple[str, int], lookup: asyncio.Future[str]
) -> None:
    if lookups.get(key) is lookup:
        del lookups[key]
    if not lookup.cancelled():
        lookup.exception()  # read here: when every request waiting for it gave up, nobody else does


def _request_headers(target: _Target, request: OutboundRequest) -> list[tuple[bytes, bytes]]:
    """The header lines as sent: Host first, the framing ours (a Content-Length for a body, or for a method
    that may have one), values without surrounding blanks (RFC 9110: not part of the value), Latin-1.
    A value that is not Latin-1 (a macro's) is a permanent `template` error, never the receiver's."""
    given = {**target.auth, **request.headers}
    names = {name.lower() for name in given}
    lines: dict[str, str] = {} if "host" in names else {"Host": target.host_header}
    lines.update((k, v) for k, v in given.items() if k.lower() not in _FRAMING)
    if "accept-encoding" not in names:
        lines["Accept-Encoding"] = "identity"  # the excerpt is kept as it came: nothing to decode
    if request.body is not None or request.method in _BODY_METHODS:
        lines["Content-Length"] = str(len(request.body or b""))
    try:
        return [(name.encode("ascii"), value.strip(" \t").encode("latin-1")) for name, value in lines.items()]
    except UnicodeError as exc:
        raise _unbuildable(exc) from None


def _with_head(
    exchange: Exchange, connection: connections.Connection | None, error: DeliveryError
) -> DeliveryError:
    """An answer whose body failed keeps its status and headers in the log, beside the error."""
    if connection is not None and connection.head is not None:
        exchange.status_code, exchange.reason, received = connection.head
        exchange.headers = _headers(received)
    return error


_FRAMING = frozenset({"content-length", "transfer-encoding"})
# http.client sends a Content-Length (0 without a body) for these; receivers of a bodyless POST expect it.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _headers(received: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The answer's headers as logged: a repeated name once, its values joined by commas (RFC 9110)."""
    joined: dict[str, str] = {}
    lower: dict[str, str] = {}
    for name, value in received:
        first = lower.setdefault(name.lower(), name)
        joined[first] = f"{joined[first]}, {value}" if first in joined else value
    return {name: value[:1000] for name, value in joined.items()}


def _connect_error(exc: BaseException, where: str) -> DeliveryError:
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return _tls_error(exc, where)
    return DeliveryError(ErrorClass.CONNECT, f"cannot connect to {where}: {_short(exc)}", permanent=False)


def _broken(exc: BaseException, where: str) -> DeliveryError:
    if isinstance(exc, ssl.SSLError):
        return _tls_error(exc, where)
    if isinstance(exc, h11.RemoteProtocolError):
        reason = f"its answer is not HTTP/1.1 ({exc})"
    else:
        reason = _short(exc)
    return DeliveryError(ErrorClass.CONNECT, f"connection to {where} broken: {reason}", permanent=False)


def _unbuildable(exc: BaseException) -> DeliveryError:
    """A request that cannot be written as asked (URL, header, value): the postback's fault, never retried."""
    return DeliveryError(ErrorClass.TEMPLATE, f"cannot build the request: {exc}", permanent=True)


def _tls_error(exc: BaseException, where: str) -> DeliveryError:
    return DeliveryError(ErrorClass.TLS, f"TLS with {where} failed: {_short(exc)}", permanent=False)


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # lower-case ASCII, IPv6 without brackets
    port: int
    host_header: str
    path: str  # path and query, as on the request line
    auth: dict[str, str]  # an Authorization header for a URL's user:password, as browsers send it


def _target(url: str, headers: Mapping[str, str]) -> _Target:
    """Where and what to send, or a permanent `template` error: a URL or header that cannot be sent is the
    postback's fault, never the receiver's (it must not pass for a connect error worth retrying)."""
    try:
        # The host as saving read it (`urls`), and the path and query quoted as `urls.as_sent` quotes them
        # (the same parse: a second pass changes nothing, and cost a send 25 us): a signed GET signed this.
        sent = urllib3.util.parse_url(urls.sendable(url))
        fields.check(headers)
        auth: dict[str, str] = {}
        if sent.auth and not any(name.lower() == "authorization" for name in headers):
            user, _, password = unquote(sent.auth).partition(":")
            basic = urllib3.util.make_headers(basic_auth=f"{user}:{password}")  # Latin-1, or UnicodeError
            auth = {"Authorization": basic["authorization"]}
    except (ValueError, LocationParseError) as exc:  # BadURL, BadHeader and UnicodeError are ValueErrors
        raise _unbuildable(exc) from None
    scheme, host = sent.scheme or "", (sent.host or "").strip("[]")
    if scheme not in DEFAULT_PORTS or not host:
        raise DeliveryError(
            ErrorClass.TEMPLATE,
            f"the URL must be http:// or https:// with a host, got {url!r}",
            permanent=True,
        )
    shown = f"[{host}]" if ":" in host else host
    port = sent.port or DEFAULT_PORTS[scheme]
    host_header = shown if port == DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    return _Target(scheme, host, port, host_header, sent.request_uri, auth)


# What a publisher should read for the socket errors receivers cause, instead of Python's "[Errno 111] ...".
_PLAIN = {
    errno.ECONNREFUSED: "connection refused (nothing accepts connections on that port)",
    errno.ECONNRESET: "connection reset by the receiver",
    errno.ECONNABORTED: "connection aborted",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.EPIPE: "the receiver closed the connection while we were sending",
}


def _short(exc: BaseException) -> str:
    """An error in plain words: a socket error without Python's "[Errno 111] ...", others' own message."""
    if isinstance(exc, OSError) and exc.errno in _PLAIN:
        return _PLAIN[exc.errno]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:300]
    return (str(exc) or type(exc).__name__)[:300]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _VettedAddresses:
    """host, port -> the address to connect to, vetted: fresh for VETTED_FOR_S, usable for STALE_FOR_S."""

    def __init__(self, resolver: ssrf.Resolver, allowed: Sequence[IPNetwork]) -> None:
        self._resolver = resolver
        self._allowed = allowed
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int], tuple[str, float]] = {}

    def known(self, host: str, port: int) -> tuple[str, bool] | None:
        """The address last vetted for `host`, `port` and whether it is still fresh, if it is usable."""
        with self._lock:
            known = self._known.get((host, port))
        if known is None:
            return None
        address, vetted_at = known
        age = time.monotonic() - vetted_at
        return (address, age < VETTED_FOR_S) if age < STALE_FOR_S else None

    def vetted(self, host: str, port: int) -> str:
        """Looks `host` up and vets what it resolves to (blocks: a DNS lookup)."""
        address = ssrf.vet(host, self._resolver(host, port), self._allowed)
        now = time.monotonic()
        with self._lock:
            if len(self._known) > 10_000:  # a crude bound: unusable answers go first
                self._known = {k: v for k, v in self._known.items() if now - v[1] < STALE_FOR_S}
            self._known[(host, port)] = (address, now)
        return address
