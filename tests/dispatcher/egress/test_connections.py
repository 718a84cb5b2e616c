"""The client's wire: answers framed every way HTTP/1.1 allows, receivers that misbehave on the socket, TLS
with the name checked, and requests started without waiting, against raw local servers."""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dispatcher.egress import client as client_module
from dispatcher.egress import connections
from dispatcher.egress.client import EgressClient, Exchange, OutboundRequest
from dispatcher.models.deliveries import RESPONSE_EXCERPT_BYTES

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
Answer = Callable[[socket.socket, bytes], bool]  # writes its answer; False closes the connection


class RawServer:
    """Accepts connections and answers each request head with `answer`; counts connections and requests."""

    def __init__(self, answer: Answer, wrap: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.wrap = wrap
        self.connections = 0
        self.ended = 0  # connections the client closed (or reset)
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            self._converse(connection)
        finally:
            self.ended += 1

    def _converse(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError), contextlib.closing(connection):
            if self.wrap is not None:
                connection = self.wrap.wrap_socket(connection, server_side=True)
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    data = connection.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, pending = pending.partition(b"\r\n\r\n")
                self.requests.append(head)
                if not self.answer(connection, head):
                    return

    def close(self) -> None:
        self.listener.close()


@contextlib.contextmanager
def serving(answer: Answer, wrap: ssl.SSLContext | None = None) -> Iterator[RawServer]:
    server = RawServer(answer, wrap)
    try:
        yield server
    finally:
        server.close()


def replying(raw: bytes, *, keep: bool = True) -> Answer:
    def answer(connection: socket.socket, _head: bytes) -> bool:
        connection.sendall(raw)
        return keep

    return answer


def get(client: EgressClient, port: int, path: str = "/pb", scheme: str = "http") -> Exchange:
    return client.send(
        OutboundRequest("GET", f"{scheme}://tracker.example:{port}{path}", {"User-Agent": "t"})
    )


@pytest.fixture
def client() -> Iterator[EgressClient]:
    made = EgressClient(LOOPBACK, resolver=lambda host, port: ["127.0.0.1"], total_timeout_s=2)
    yield made
    made.close()


def test_a_chunked_answer_is_read_whole_and_its_connection_kept(client: EgressClient) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
    chunked = head + b"2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n"
    with serving(replying(chunked)) as server:
        first, second = get(client, server.port), get(client, server.port)

    assert (first.status_code, first.excerpt, first.error) == (200, "ok!!!", None)
    assert first.headers is not None and first.headers["X-A"] == "1, 2"  # repeated names joined, as logged
    assert second.excerpt == "ok!!!"
    assert (server.connections, len(server.requests)) == (1, 2)
    assert server.requests[0].startswith(b"GET /pb HTTP/1.1\r\n")
    assert b"\r\nhost: tracker.example:" in server.requests[0].lower()


def test_an_answer_that_ends_with_its_connection_is_read_to_the_end(client: EgressClient) -> None:
    with serving(replying(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", keep=False)) as server:
        first, second = get(client, server.port), get(client, server.port)

    assert (first.excerpt, second.excerpt) == ("until the end", "until the end")
    assert server.connections == 2  # nothing to reuse


def test_a_receiver_that_says_close_gets_a_new_connection_next_time(client: EgressClient) -> None:
    with serving(replying(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")) as server:
        get(client, server.port)
        exchange = get(client, server.port)

    assert (exchange.status_code, exchange.reason, exchange.error) == (204, "No Content", None)
    assert server.connections == 2


def test_a_body_over_the_excerpt_is_not_drained_and_its_connection_not_reused(client: EgressClient) -> None:
    big = b"x" * (RESPONSE_EXCERPT_BYTES * 50)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)
    with serving(replying(answer)) as server:
        first = get(client, server.port)
        second = get(client, server.port)

    assert first.excerpt == "x" * RESPONSE_EXCERPT_BYTES and second.error is None
    assert server.connections == 2


def test_an_informational_answer_is_skipped_for_the_real_one(client: EgressClient) -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    with serving(replying(answer)) as server:
        exchange = get(client, server.port)

    assert (exchange.status_code, exchange.excerpt) == (201, "ok")


def test_a_receiver_dripping_its_answer_is_cut_at_the_total_timeout(client: EgressClient) -> None:
    def drip(connection: socket.socket, _head: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):
            connection.sendall(b"x")
            time.sleep(0.1)
        return False

    with serving(drip) as server:
        started = time.monotonic()
        exchange = get(client, server.port)

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.permanent) == ("timeout", False)
    assert str(exchange.error) == "no complete answer within 2 s"
    assert time.monotonic() - started < 4


def test_an_answer_that_is_not_http_is_a_broken_connection_in_plain_words(client: EgressClient) -> None:
    with serving(replying(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as server:
        exchange = get(client, server.port)

    assert exchange.error is not None and exchange.error.error_class == "connect"
    assert (
        f"connection to tracker.example:{server.port} (127.0.0.1) broken: its answer is not HTTP/1.1"
        in str(exchange.error)
    )


def test_a_receiver_that_closes_without_answering_is_a_broken_connection(client: EgressClient) -> None:
    with serving(lambda connection, head: False) as server:
        exchange = get(client, server.port)

    assert exchange.error is not None and exchange.error.error_class == "connect"
    assert "broken: the receiver closed the connection before answering in full" in str(exchange.error)
    assert exchange.status_code is None


def test_a_bodyless_post_says_its_length_as_browsers_do(client: EgressClient) -> None:
    with serving(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as server:
        client.send(OutboundRequest("POST", f"http://tracker.example:{server.port}/hook"))

    [head] = server.requests
    assert b"\r\nContent-Length: 0" in head and b"\r\nAccept-Encoding: identity" in head


def test_requests_started_without_waiting_do_not_wait_for_a_hanging_receiver(client: EgressClient) -> None:
    """One loop carries every request: twenty that hang hold no one else up."""
    done: list[tuple[str, Exchange, str]] = []
    finished = threading.Event()

    def record(path: str) -> Callable[[Exchange], None]:
        def then(exchange: Exchange) -> None:
            done.append((path, exchange, threading.current_thread().name))
            if path == "/fast":
                finished.set()

        return then

    def hang(_connection: socket.socket, _head: bytes) -> bool:
        time.sleep(5)
        return False

    with (
        serving(hang) as hanging,
        serving(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) as fast,
    ):
        for _ in range(20):
            client.start(
                OutboundRequest("GET", f"http://tracker.example:{hanging.port}/hang"), record("/hang")
            )
        time.sleep(0.2)  # all twenty are in flight
        started = time.monotonic()
        client.start(OutboundRequest("GET", f"http://tracker.example:{fast.port}/fast"), record("/fast"))
        assert finished.wait(5)

    assert time.monotonic() - started < 1
    [(_, exchange, thread)] = [entry for entry in done if entry[0] == "/fast"]
    assert (exchange.status_code, exchange.excerpt, thread) == (200, "ok", "egress")


# --- TLS: an authority of the test's own, trusted by the client instead of certifi's bundle ---


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a certificate it signed for tracker.example (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes the test certificates")
    where = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=Test CA", cwd=where)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "site.key", "-out", "site.csr",
             "-subj", "/CN=tracker.example", cwd=where)  # fmt: skip
    (where / "san.ext").write_text("subjectAltName=DNS:tracker.example\n")
    _openssl("x509", "-req", "-in", "site.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "site.pem", "-days", "2", "-extfile", "san.ext", cwd=where)  # fmt: skip
    return where


def tls_client(authority: Path) -> EgressClient:
    trusted = ssl.create_default_context(cafile=str(authority / "ca.pem"))
    return EgressClient(LOOPBACK, resolver=lambda host, port: ["127.0.0.1"], tls=trusted, total_timeout_s=5)


def tls_server(authority: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(authority / "site.pem", authority / "site.key")
    return context


def test_https_goes_to_the_vetted_address_with_the_name_checked_in_its_certificate(authority: Path) -> None:
    client = tls_client(authority)
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    try:
        with serving(replying(ok), wrap=tls_server(authority)) as server:
            exchange = get(client, server.port, scheme="https")
            again = get(client, server.port, scheme="https")
    finally:
        client.close()

    assert (exchange.status_code, exchange.excerpt, exchange.resolved_ip) == (200, "ok", "127.0.0.1")
    assert again.error is None and server.connections == 1  # kept alive over TLS too


def test_a_certificate_for_another_name_is_a_tls_error(authority: Path) -> None:
    client = tls_client(authority)
    try:
        with serving(replying(b"HTTP/1.1 200 OK\r\n\r\n"), wrap=tls_server(authority)) as server:
            url = f"https://other.example:{server.port}/pb"
            exchange = client.send(OutboundRequest("GET", url))
    finally:
        client.close()

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.permanent) == ("tls", False)
    assert f"TLS with other.example:{server.port} (127.0.0.1) failed" in str(exchange.error)
    assert exchange.status_code is None


def test_a_receiver_unknown_to_the_trusted_authorities_is_a_tls_error(authority: Path) -> None:
    client = EgressClient(LOOPBACK, resolver=lambda host, port: ["127.0.0.1"])  # certifi's bundle
    try:
        with serving(replying(b"HTTP/1.1 200 OK\r\n\r\n"), wrap=tls_server(authority)) as server:
            exchange = get(client, server.port, scheme="https")
    finally:
        client.close()

    assert exchange.error is not None and exchange.error.error_class == "tls"
    assert "certificate verify failed" in str(exchange.error)


# --- what the review of the first version found ---


def test_a_latin_1_header_value_is_sent_as_latin_1_and_blanks_around_a_value_are_dropped(
    client: EgressClient,
) -> None:
    with serving(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as server:
        url = f"http://tracker.example:{server.port}/pb"
        exchange = client.send(OutboundRequest("GET", url, {"X-Name": "Café", "X-Pad": "abc "}))

    assert (exchange.status_code, exchange.error) == (200, None)
    [head] = server.requests
    assert b"\r\nX-Name: Caf\xe9" in head and b"\r\nX-Pad: abc\r\n" in head + b"\r\n"
    assert head.split(b"\r\n")[1].startswith(b"Host: tracker.example:")  # Host first, as RFC 9110 asks


def test_bytes_past_an_answer_never_pass_for_the_next_answer(client: EgressClient) -> None:
    forged = b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"
    answers = iter([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + forged, b"HTTP/1.1 204 Fine\r\n\r\n"])

    def answer(connection: socket.socket, _head: bytes) -> bool:
        connection.sendall(next(answers, b"HTTP/1.1 204 Fine\r\n\r\n"))
        return True

    with serving(answer) as server:
        first, second = get(client, server.port), get(client, server.port)

    assert (first.status_code, first.excerpt) == (200, "ok")
    assert (second.status_code, second.reason) == (204, "Fine")  # a new connection, not the forged 302
    assert server.connections == 2


def test_a_receiver_that_accepts_and_closes_at_once_fails_at_once_as_broken(client: EgressClient) -> None:
    def close_at_once(connection: socket.socket) -> None:
        connection.close()

    with _accepting(close_at_once) as port:
        started = time.monotonic()
        exchange = get(client, port)

    assert exchange.error is not None and exchange.error.error_class == "connect"
    assert time.monotonic() - started < 1  # not held until the total timeout (2 s here)


def test_a_service_that_speaks_first_is_a_broken_connection_not_a_timeout(client: EgressClient) -> None:
    def greet(connection: socket.socket) -> None:
        connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
        time.sleep(3)
        connection.close()

    with _accepting(greet) as port:
        started = time.monotonic()
        exchange = get(client, port)

    assert exchange.error is not None and exchange.error.error_class == "connect"
    assert time.monotonic() - started < 1


def test_an_answer_whose_body_times_out_keeps_its_status_in_the_log(client: EgressClient) -> None:
    def head_then_silence(connection: socket.socket, _head: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Seen: 1\r\n\r\nok")
        time.sleep(4)
        return False

    with serving(head_then_silence) as server:
        exchange = get(client, server.port)

    assert exchange.error is not None and exchange.error.error_class == "timeout"
    assert (exchange.status_code, exchange.headers) == (200, {"Content-Length": "10", "X-Seen": "1"})


def test_a_dns_lookup_that_hangs_ends_within_the_total_timeout_as_a_dns_error() -> None:
    def hanging_resolver(host: str, port: int) -> list[str]:
        time.sleep(5)
        return ["127.0.0.1"]

    client = EgressClient(LOOPBACK, resolver=hanging_resolver, total_timeout_s=0.5)
    try:
        started = time.monotonic()
        exchange = client.send(OutboundRequest("GET", "http://slow-dns.example/pb"))
    finally:
        client.close()

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.permanent) == ("dns", False)
    assert str(exchange.error) == "resolving 'slow-dns.example' took over 0.5 s"
    assert time.monotonic() - started < 2


def test_requests_waiting_for_the_same_name_share_one_lookup() -> None:
    lookups: list[str] = []

    def counting_resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        time.sleep(0.3)
        return ["127.0.0.1"]

    client = EgressClient(LOOPBACK, resolver=counting_resolver)
    done = threading.Semaphore(0)
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    try:
        with serving(replying(ok)) as server:
            for _ in range(10):
                url = f"http://tracker.example:{server.port}/pb"
                client.start(OutboundRequest("GET", url), lambda exchange: done.release())
            for _ in range(10):
                assert done.acquire(timeout=5)
    finally:
        client.close()

    assert lookups == ["tracker.example"]


@contextlib.contextmanager
def _accepting(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A port whose connections are handed to `handle` as they are accepted, before any request."""
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


# --- what the second review found ---


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nServer : sloppy\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    ],
)
def test_an_answer_with_a_head_h11_refuses_is_read_as_http_client_read_it(
    client: EgressClient, head: bytes
) -> None:
    """Refused, a receiver that took the postback (200) would get it again with every retry."""
    with serving(replying(head)) as server:
        first, second = get(client, server.port), get(client, server.port)

    assert (first.status_code, first.reason, first.excerpt, first.error) == (200, "OK", "ok", None)
    assert first.headers is not None and first.headers["Content-Length"].startswith("2")
    assert second.status_code == 200 and server.connections == 2  # such a connection is not reused


def test_a_service_that_is_not_http_is_still_refused(client: EgressClient) -> None:
    with serving(replying(b"HTTP/9 garbage\r\n\r\n")) as server:
        exchange = get(client, server.port)

    assert exchange.error is not None and exchange.error.error_class == "connect"
    assert exchange.status_code is None


def test_a_dns_lookup_that_hangs_counts_as_a_timeout_for_the_circuit() -> None:
    client = EgressClient(LOOPBACK, resolver=lambda host, port: time.sleep(5) or [], total_timeout_s=0.3)
    try:
        exchange = client.send(OutboundRequest("GET", "http://slow-dns.example/pb"))
    finally:
        client.close()

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.timed_out) == ("dns", True)


def test_an_answer_vetted_a_while_ago_is_used_while_the_name_is_looked_up_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "VETTED_FOR_S", 0.1)
    lookups: list[float] = []

    def slower_each_time(host: str, port: int) -> list[str]:
        lookups.append(time.monotonic())
        time.sleep(0 if len(lookups) == 1 else 1.0)  # the name servers slow down
        return ["127.0.0.1"]

    client = EgressClient(LOOPBACK, resolver=slower_each_time)
    try:
        with serving(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) as server:
            assert get(client, server.port).error is None
            time.sleep(0.2)  # the answer is no longer fresh
            started = time.monotonic()
            again = get(client, server.port)
            took = time.monotonic() - started
            time.sleep(0.1)
    finally:
        client.close()

    assert (again.status_code, again.resolved_ip) == (200, "127.0.0.1")
    assert took < 0.5  # it did not wait for the second lookup (1 s)...
    assert len(lookups) == 2  # ...which ran beside it


def test_a_timed_out_connection_is_dropped_at_once_even_over_tls(authority: Path) -> None:
    """A graceful TLS close waits up to 30 s for the receiver's close_notify: a hanging one never sends it."""
    trusted = ssl.create_default_context(cafile=str(authority / "ca.pem"))
    client = EgressClient(LOOPBACK, resolver=lambda host, port: ["127.0.0.1"], tls=trusted, total_timeout_s=1)
    try:
        with serving(_reading_until_closed(), wrap=tls_server(authority)) as server:
            exchange = get(client, server.port, scheme="https")
            deadline = time.monotonic() + 3
            while server.ended == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            ended = server.ended
    finally:
        client.close()

    assert exchange.error is not None and exchange.error.error_class == "timeout"
    assert ended == 1


def test_a_connection_idle_past_its_time_is_closed_with_no_traffic_after_it(
    client: EgressClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "IDLE_S", 0.2)
    with serving(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) as server:
        assert get(client, server.port).error is None
        deadline = time.monotonic() + 3
        while server.ended == 0 and time.monotonic() < deadline:
            time.sleep(0.05)

        assert server.ended == 1


def test_closing_the_client_ends_a_send_waiting_for_a_hanging_receiver() -> None:
    client = EgressClient(LOOPBACK, resolver=lambda host, port: ["127.0.0.1"], total_timeout_s=10)
    results: list[Exchange] = []
    with serving(_reading_until_closed()) as server:
        sender = threading.Thread(target=lambda: results.append(get(client, server.port)))
        sender.start()
        time.sleep(0.3)
        started = time.monotonic()
        client.close()
        sender.join(5)

    assert time.monotonic() - started < 2
    [exchange] = results
    assert exchange.error is not None and "the client was closed" in str(exchange.error)


def _reading_until_closed() -> Answer:
    """Never answers: waits for the client to go (a recv that ends), then ends the conversation."""

    def wait(connection: socket.socket, _head: bytes) -> bool:
        connection.settimeout(10)
        with contextlib.suppress(OSError):
            while connection.recv(65536):
                pass
        return False

    return wait
