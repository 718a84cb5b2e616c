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
import contextlib
import errno
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: connections.Pool | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, request: OutboundRequest) -> Exchange:
        """Sends `request` and waits for the exchange (not from the client's own loop)."""
        return asyncio.run_coroutine_threadsafe(self.exchange(request), self._running()).result()

    def start(self, request: OutboundRequest, done: Callable[[Exchange], None]) -> None:
        """Sends `request` without waiting: `done` gets the exchange in the client's loop thread, so it must
        be short and never block. After `close`, a request started meanwhile may never call `done`."""
        loop = self._running()
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(self._start, request, done)

    async def exchange(self, request: OutboundRequest) -> Exchange:
        """The request's exchange, on the running loop (the client's own)."""
        started = time.monotonic()
        exchange = Exchange()
        try:
            await self._exchange(request, started, exchange)
        except DeliveryError as exc:
            exchange.error = exc
        finally:
            exchange.duration_ms = int((time.monotonic() - started) * 1000)
        return exchange

    def close(self) -> None:
        """Closes the kept-alive connections and stops the loop; requests in flight end unanswered. The next
        request starts a new loop."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError, TimeoutError):
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._pool = connections.Pool(self._pool_size, self._tls)
                self._thread = threading.Thread(target=self._loop.run_forever, name="egress", daemon=True)
                self._thread.start()
            return self._loop

    def _start(self, request: OutboundRequest, done: Callable[[Exchange], None]) -> None:
        task = asyncio.get_running_loop().create_task(self._exchange_then(request, done))
        self._tasks.add(task)  # the loop keeps only a weak reference to its tasks
        task.add_done_callback(self._tasks.discard)

    async def _exchange_then(self, request: OutboundRequest, done: Callable[[Exchange], None]) -> None:
        try:
            exchange = await self.exchange(request)
        except Exception as exc:  # noqa: BLE001 - a bug here must still reach `done` (as a retry)
            log.exception("sending %s failed unexpectedly", request.url)
            error = DeliveryError(ErrorClass.CONNECT, f"internal error: {exc!r}", permanent=False)
            exchange = Exchange(error=error)
        try:
            done(exchange)
        except Exception:  # noqa: BLE001 - the caller's bug; the loop must go on for every other request
            log.exception("handling the exchange with %s failed", request.url)

    async def _stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pool is not None:
            self._pool.close()

    async def _exchange(self, request: OutboundRequest, started: float, exchange: Exchange) -> None:
        target = _target(request.url, request.headers)
        try:
            address = self._addresses.known(target.host, target.port)
            if address is None:  # the resolver blocks: not on the loop, which carries every other request
                loop = asyncio.get_running_loop()
                address = await loop.run_in_executor(None, self._addresses.vetted, target.host, target.port)
        except (ssrf.Refused, ssrf.ResolveFailed) as exc:
            permanent = isinstance(exc, ssrf.Refused)
            raise DeliveryError(
                ErrorClass.SSRF if permanent else ErrorClass.DNS, str(exc), permanent=permanent
            ) from None
        exchange.resolved_ip = address
        headers = {**target.auth, **request.headers}
        names = {name.lower() for name in headers}
        if "host" not in names:
            headers["Host"] = target.host_header  # the connection's host is the address: the name goes here
        if "accept-encoding" not in names:
            headers["Accept-Encoding"] = "identity"  # the excerpt is kept as it came: nothing to decode
        if request.body is not None or request.method in _BODY_METHODS:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(request.body or b""))
        https = target.scheme == "https"
        key = connections.Key(target.scheme, address, target.port, target.host if https else None)
        where = f"{target.host_header} ({address})"
        assert self._pool is not None
        pool = self._pool
        connection: connections.Connection | None = None
        answer: connections.Answer | None = None
        try:
            async with asyncio.timeout(max(0.0, started + self.total_timeout_s - time.monotonic())):
                try:
                    connection = await asyncio.wait_for(pool.connection(key), self.connect_timeout_s)
                except TimeoutError:
                    raise DeliveryError(
                        ErrorClass.TIMEOUT,
                        f"connecting to {where} took over {self.connect_timeout_s:g} s",
                        permanent=False,
                    ) from None
                except (OSError, ssl.SSLError) as exc:
                    raise _connect_error(exc, where) from None
                answer = await connection.exchange(
                    request.method,
                    target.path,
                    list(headers.items()),
                    request.body,
                    RESPONSE_EXCERPT_BYTES,
                )
        except TimeoutError:
            raise DeliveryError(
                ErrorClass.TIMEOUT, f"no complete answer within {self.total_timeout_s:g} s", permanent=False
            ) from None
        except h11.LocalProtocolError as exc:  # a header h11 will not write: the postback's fault
            raise DeliveryError(
                ErrorClass.TEMPLATE, f"cannot build the request: {exc}", permanent=True
            ) from None
        except (OSError, h11.RemoteProtocolError) as exc:
            raise _broken(exc, where) from None
        finally:
            if connection is not None and answer is None:
                connection.close()  # failed or timed out mid-request: never reused
        exchange.status_code = answer.status
        exchange.reason = answer.reason
        exchange.headers = _headers(answer.headers)
        exchange.excerpt = answer.body[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace")
        if answer.complete and connection is not None:
            pool.give_back(key, connection)


# http.client sends a Content-Length (0 without a body) for these; receivers of a bodyless POST expect it.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _headers(received: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The answer's headers as logged: a repeated name once, its values joined (as urllib3 did)."""
    joined: dict[str, str] = {}
    lower: dict[str, str] = {}
    for name, value in received:
        first = lower.setdefault(name.lower(), name)
        joined[first] = f"{joined[first]}, {value}" if first in joined else value
    return {name: value[:1000] for name, value in joined.items()}


def _connect_error(exc: BaseException, where: str) -> DeliveryError:
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return DeliveryError(ErrorClass.TLS, f"TLS with {where} failed: {_short(exc)}", permanent=False)
    return DeliveryError(ErrorClass.CONNECT, f"cannot connect to {where}: {_short(exc)}", permanent=False)


def _broken(exc: BaseException, where: str) -> DeliveryError:
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(ErrorClass.TLS, f"TLS with {where} failed: {_short(exc)}", permanent=False)
    if isinstance(exc, h11.RemoteProtocolError):
        reason = f"its answer is not HTTP/1.1 ({exc})"
    else:
        reason = _short(exc)
    return DeliveryError(ErrorClass.CONNECT, f"connection to {where} broken: {reason}", permanent=False)


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
        # The host as saving read it (`urls`), and the path and query quoted as `urls.as_sent` quotes them:
        # a signed GET signed exactly this.
        sent = urllib3.util.parse_url(urls.as_sent(urls.sendable(url)))
        fields.check(headers)
        auth: dict[str, str] = {}
        if sent.auth and not any(name.lower() == "authorization" for name in headers):
            user, _, password = unquote(sent.auth).partition(":")
            basic = urllib3.util.make_headers(basic_auth=f"{user}:{password}")  # Latin-1, or UnicodeError
            auth = {"Authorization": basic["authorization"]}
    except (ValueError, LocationParseError) as exc:  # BadURL, BadHeader and UnicodeError are ValueErrors
        raise DeliveryError(ErrorClass.TEMPLATE, f"cannot build the request: {exc}", permanent=True) from None
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


class _VettedAddresses:
    """host, port -> the address to connect to, vetted, kept VETTED_FOR_S."""

    def __init__(self, resolver: ssrf.Resolver, allowed: Sequence[IPNetwork]) -> None:
        self._resolver = resolver
        self._allowed = allowed
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int], tuple[str, float]] = {}

    def known(self, host: str, port: int) -> str | None:
        """The vetted address still fresh for `host`, `port`, if there is one (no lookup)."""
        with self._lock:
            known = self._known.get((host, port))
        return known[0] if known is not None and known[1] > time.monotonic() else None

    def vetted(self, host: str, port: int) -> str:
        now = time.monotonic()
        with self._lock:
            known = self._known.get((host, port))
        if known is not None and known[1] > now:
            return known[0]
        address = ssrf.vet(host, self._resolver(host, port), self._allowed)
        with self._lock:
            if len(self._known) > 10_000:  # a crude bound: expired answers go first
                self._known = {key: value for key, value in self._known.items() if value[1] > now}
            self._known[(host, port)] = (address, now + VETTED_FOR_S)
        return address
