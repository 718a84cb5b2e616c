"""The HTTP client for postbacks: SSRF-safe, time-bounded, no redirects, capped reads, reused connections.

Safety: every new connection resolves the host itself, vets every address it resolves to (`ssrf.vet`) and
connects to the vetted address; TLS still verifies the certificate against the host name and the Host header
is untouched, because only the socket is pinned. Keep-alive connections are reused per host and port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.adapters
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from dispatcher.config import IPNetwork
from dispatcher.egress import fields, ssrf, urls
from dispatcher.egress.errors import DeliveryError
from dispatcher.models import ErrorClass
from dispatcher.models.deliveries import RESPONSE_EXCERPT_BYTES

Guard = Callable[[str, int], str]


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
        self._watchdog = _Watchdog()

        def guard(host: str, port: int) -> str:
            return ssrf.vet(host, resolver(host, port), allowed_networks)

        self._adapter = _PinnedAdapter(guard, self._watchdog, pool_size)

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
        self._adapter.close()

    def _send(self, request: OutboundRequest, started: float, exchange: Exchange) -> None:
        prepared = _prepare(request)
        deadline = started + self.total_timeout_s
        self._watchdog.arm(deadline)
        try:
            response = self._adapter.send(
                prepared, stream=True, timeout=(self.connect_timeout_s, self.total_timeout_s), verify=True
            )
        except (ssrf.Refused, ssrf.ResolveFailed) as exc:
            permanent = isinstance(exc, ssrf.Refused)
            raise DeliveryError(
                ErrorClass.SSRF if permanent else ErrorClass.DNS, str(exc), permanent=permanent
            ) from None
        except requests.RequestException as exc:
            raise self._transport_error(exc) from None
        raw = response.raw
        connection = getattr(raw, "connection", None)
        exchange.resolved_ip = getattr(connection, "vetted_ip", None)
        exchange.status_code = response.status_code
        exchange.reason = response.reason or ""
        exchange.headers = {key: value[:1000] for key, value in response.headers.items()}
        try:
            body = raw.read(RESPONSE_EXCERPT_BYTES + 1, decode_content=False)
        except Exception as exc:  # noqa: BLE001 - any failure to read the body is a transport failure
            raw.close()
            raise self._transport_error(exc) from None
        if len(body) > RESPONSE_EXCERPT_BYTES:
            # More than we keep: drop the connection rather than drain a body of unknown size.
            raw.close()
            raw.release_conn()
        exchange.excerpt = body[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace")

    def _transport_error(self, exc: BaseException) -> DeliveryError:
        if self._watchdog.fired() or isinstance(exc, requests.Timeout | TimeoutError | socket.timeout):
            return DeliveryError(
                ErrorClass.TIMEOUT, f"no complete answer within {self.total_timeout_s:g} s", permanent=False
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return DeliveryError(ErrorClass.TLS, f"TLS failed: {_short(exc)}", permanent=False)
        connect_error = _cause(exc, ConnectTimeoutError)  # NewConnectionError is one of these too
        if isinstance(connect_error, NewConnectionError):
            return DeliveryError(ErrorClass.CONNECT, str(connect_error), permanent=False)
        if connect_error is not None:
            return DeliveryError(ErrorClass.TIMEOUT, str(connect_error), permanent=False)
        return DeliveryError(ErrorClass.CONNECT, f"connection broken: {_short(exc)}", permanent=False)


def _prepare(request: OutboundRequest) -> requests.PreparedRequest:
    """The request as it will be sent, or a permanent `template` error: a URL or header that cannot be sent
    is the postback's fault, never the receiver's (it must not pass for a connect error worth retrying)."""
    try:
        # The host saving read, rebuilt around it; `render` did the same, so its URLs come out unchanged.
        url = urls.sendable(request.url)
        fields.check(request.headers)
        return requests.Request(
            request.method, url, headers=dict(request.headers), data=request.body
        ).prepare()
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, ValueError) as exc:
        raise DeliveryError(ErrorClass.TEMPLATE, f"cannot build the request: {exc}", permanent=True) from None


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of `kind` in the chain requests and urllib3 wrap around the real one."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None or isinstance(seen, kind):
            return seen
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else inner or seen.__cause__ or seen.__context__
    return None


def _short(exc: BaseException) -> str:
    return str(exc)[:300]


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


def _pinned_connection_classes(
    guard: Guard, watchdog: _Watchdog
) -> tuple[type[HTTPConnection], type[HTTPSConnection]]:
    class PinnedConnection(HTTPConnection):
        vetted_ip: str | None = None

        def _new_conn(self) -> socket.socket:
            address = guard(self._dns_host, self.port)
            try:
                sock = urllib3.util.connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"connect to {self.host} ({address}) timed out") from exc
            except OSError as exc:
                raise NewConnectionError(self, f"cannot connect to {self.host} ({address}): {exc}") from exc
            self.vetted_ip = address
            return sock

        def request(self, *args: Any, **kwargs: Any) -> None:
            watchdog.watch(self)
            super().request(*args, **kwargs)

    class PinnedHTTPSConnection(PinnedConnection, HTTPSConnection):
        pass

    return PinnedConnection, PinnedHTTPSConnection


class _PinnedAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, guard: Guard, watchdog: _Watchdog, pool_size: int) -> None:
        self._connection_classes = _pinned_connection_classes(guard, watchdog)
        # Redirects are never followed (max_retries=0 also means no silent retry of a sent request).
        super().__init__(pool_connections=1024, pool_maxsize=pool_size, max_retries=0, pool_block=False)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **kwargs)
        plain, tls = self._connection_classes

        class Pool(HTTPConnectionPool):
            ConnectionCls = plain

        class TLSPool(HTTPSConnectionPool):
            ConnectionCls = tls

        self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}
