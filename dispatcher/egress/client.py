"""The HTTP client for postbacks: SSRF-safe, time-bounded, no redirects, capped reads, reused connections.

It sends through urllib3's connection pools directly: `requests` cost twice the CPU per postback (preparing,
hooks, adapters) and the sending threads are where a worker spends its time.

Safety: the host is resolved here, every address it resolves to is vetted (`ssrf.vet`) and the request goes
to a pool whose host *is* the vetted address; the name goes only into the Host header and, for TLS, into SNI
and the certificate check (`server_hostname`, `assert_hostname`). A DNS answer that changes afterwards cannot
move a connection elsewhere. A vetted answer is reused for VETTED_FOR_S, the way the kept-alive connections
to it are.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationParseError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from dispatcher.config import IPNetwork
from dispatcher.egress import fields, ssrf, urls
from dispatcher.egress.errors import DeliveryError
from dispatcher.models import ErrorClass
from dispatcher.models.deliveries import RESPONSE_EXCERPT_BYTES

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
    """Thread-safe; one per worker process, shared by its sending threads."""

    def __init__(
        self,
        allowed_networks: Sequence[IPNetwork] = (),
        *,
        connect_timeout_s: float = 5.0,
        total_timeout_s: float = 15.0,
        resolver: ssrf.Resolver = ssrf.system_resolver,
        pool_size: int = 128,
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.total_timeout_s = total_timeout_s
        self._timeout = urllib3.Timeout(connect=connect_timeout_s, read=total_timeout_s)
        self._watchdog = _Watchdog()
        self._addresses = _VettedAddresses(resolver, allowed_networks)
        self._pools = urllib3.PoolManager(
            num_pools=1024, maxsize=pool_size, block=False, retries=False, ca_certs=certifi.where()
        )
        plain, tls = _watched_connection_classes(self._watchdog)

        class Pool(HTTPConnectionPool):
            ConnectionCls = plain

        class TLSPool(HTTPSConnectionPool):
            ConnectionCls = tls

        self._pools.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}

    def send(self, request: OutboundRequest) -> Exchange:
        started = time.monotonic()
        exchange = Exchange()
        try:
            self._send(request, started, exchange)
        except DeliveryError as exc:
            exchange.error = exc
        finally:
            self._watchdog.unwatch()
            exchange.duration_ms = int((time.monotonic() - started) * 1000)
        return exchange

    def close(self) -> None:
        self._pools.clear()

    def _send(self, request: OutboundRequest, started: float, exchange: Exchange) -> None:
        target = _target(request.url, request.headers)
        try:
            address = self._addresses.vetted(target.host, target.port)
        except (ssrf.Refused, ssrf.ResolveFailed) as exc:
            permanent = isinstance(exc, ssrf.Refused)
            raise DeliveryError(
                ErrorClass.SSRF if permanent else ErrorClass.DNS, str(exc), permanent=permanent
            ) from None
        exchange.resolved_ip = address
        pool = self._pools.connection_from_host(
            address,
            target.port,
            target.scheme,
            pool_kwargs={"server_hostname": target.host, "assert_hostname": target.host}
            if target.scheme == "https"
            else None,
        )
        headers = {**target.auth, **request.headers}
        if not any(name.lower() == "host" for name in headers):
            headers["Host"] = target.host_header  # the pool's host is the address: the name goes here
        self._watchdog.arm(started + self.total_timeout_s)
        try:
            response = pool.urlopen(
                request.method,
                target.path,
                body=request.body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=self._timeout,
                preload_content=False,
                decode_content=False,
            )
        except (HTTPError, OSError) as exc:
            raise self._transport_error(exc, f"{target.host_header} ({address})") from None
        exchange.status_code = response.status
        exchange.reason = response.reason or ""
        exchange.headers = {key: value[:1000] for key, value in response.headers.items()}
        try:
            body = response.read(RESPONSE_EXCERPT_BYTES + 1, decode_content=False)
        except (HTTPError, OSError) as exc:
            response.close()
            raise self._transport_error(exc, f"{target.host_header} ({address})") from None
        if len(body) > RESPONSE_EXCERPT_BYTES:
            # More than we keep: drop the connection rather than drain a body of unknown size.
            response.close()
        else:
            self._watchdog.unwatch()  # before the connection goes back to the pool, where another may take it
            response.release_conn()
        exchange.excerpt = body[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace")

    def _transport_error(self, exc: BaseException, where: str) -> DeliveryError:
        """The error class and a message a publisher can read (`where`: the host and the address used)."""
        reason = _short(exc.__cause__ or exc)  # urllib3 wraps the socket's own error
        if self._watchdog.fired() or isinstance(exc, ReadTimeoutError | TimeoutError | socket.timeout):
            return DeliveryError(
                ErrorClass.TIMEOUT, f"no complete answer within {self.total_timeout_s:g} s", permanent=False
            )
        if isinstance(exc, SSLError):
            return DeliveryError(ErrorClass.TLS, f"TLS with {where} failed: {reason}", permanent=False)
        if isinstance(exc, NewConnectionError):
            return DeliveryError(ErrorClass.CONNECT, f"cannot connect to {where}: {reason}", permanent=False)
        if isinstance(exc, ConnectTimeoutError):
            return DeliveryError(
                ErrorClass.TIMEOUT,
                f"connecting to {where} took over {self.connect_timeout_s:g} s",
                permanent=False,
            )
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
    """A socket error in plain words; urllib3's own errors name a Python object, so they keep only their
    message after it ("HTTPConnection(host=..., port=...): Failed to..." -> "Failed to...")."""
    if isinstance(exc, OSError) and exc.errno in _PLAIN:
        return _PLAIN[exc.errno]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:300]
    text = str(exc)
    if text.startswith(("HTTPConnection(", "HTTPSConnection(", "WatchedConnection(", "PinnedConnection(")):
        text = text.split("): ", 1)[-1]
    return text[:300]


class _VettedAddresses:
    """host, port -> the address to connect to, vetted, kept VETTED_FOR_S."""

    def __init__(self, resolver: ssrf.Resolver, allowed: Sequence[IPNetwork]) -> None:
        self._resolver = resolver
        self._allowed = allowed
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int], tuple[str, float]] = {}

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


class _Watchdog:
    """Enforces the total time of a request: shuts the socket of a request past its deadline.

    Socket timeouts only bound each read; a receiver dripping one byte at a time would otherwise hold a
    sending thread (and the delivery's lease) for ever.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[int, float] = {}
        self._connections: dict[int, HTTPConnection] = {}
        self._fired: set[int] = set()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float) -> None:
        with self._lock:
            self._deadlines[threading.get_ident()] = deadline
            self._fired.discard(threading.get_ident())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="egress-watchdog", daemon=True)
                self._thread.start()

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections[threading.get_ident()] = connection

    def unwatch(self) -> None:
        with self._lock:
            self._deadlines.pop(threading.get_ident(), None)
            self._connections.pop(threading.get_ident(), None)

    def fired(self) -> bool:
        with self._lock:
            return threading.get_ident() in self._fired

    def _run(self) -> None:
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            with self._lock:
                late = [ident for ident, deadline in self._deadlines.items() if deadline < now]
                for ident in late:
                    self._fired.add(ident)
                    del self._deadlines[ident]
                    connection = self._connections.pop(ident, None)
                    sock = getattr(connection, "sock", None)
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)


def _watched_connection_classes(watchdog: _Watchdog) -> tuple[type[HTTPConnection], type[HTTPSConnection]]:
    class WatchedConnection(HTTPConnection):
        def request(self, *args: Any, **kwargs: Any) -> None:
            watchdog.watch(self)
            super().request(*args, **kwargs)

    class WatchedHTTPSConnection(WatchedConnection, HTTPSConnection):
        pass

    return WatchedConnection, WatchedHTTPSConnection
