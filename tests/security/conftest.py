"""A canary on loopback that must never be reached, a redirector that points at it, and an app that allows
neither loopback nor any private range (only the redirector's own /32)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from dispatcher.db import get_db
from dispatcher.models import Base
from tests.conftest import app_settings
from tests.serving import serve_in_thread

# Linux routes all of 127.0.0.0/8 to lo: the redirector gets its own address, the only one allowed.
REDIRECTOR_HOST = "127.0.0.2"
ALLOWED = f"{REDIRECTOR_HOST}/32"


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _V6Server(_Server):
    address_family = socket.AF_INET6


class Canary:
    """Listens on 127.0.0.1 and [::1] on the same port and counts every request (and every connection)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.lock = threading.Lock()
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                with canary.lock:
                    canary.hits.append(f"connection from {self.client_address[0]}")
                super().setup()

            def do_GET(self) -> None:
                with canary.lock:
                    canary.hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_GET

            def log_message(self, *_args: Any) -> None:
                pass

        self.servers: list[ThreadingHTTPServer] = [_Server(("127.0.0.1", 0), Handler)]
        self.port = self.servers[0].server_address[1]
        with contextlib.suppress(OSError):  # no IPv6 loopback here: the IPv4 canary still counts
            self.servers.append(_V6Server(("::1", self.port), Handler))
        for server in self.servers:
            serve_in_thread(server)

    def count(self) -> int:
        with self.lock:
            return len(self.hits)

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


class Redirector:
    """An allowed receiver that answers every request with a 302 to the canary."""

    def __init__(self, location: str) -> None:
        self.hits = 0
        redirector = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                redirector.hits += 1
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = _Server((REDIRECTOR_HOST, 0), Handler)
        self.port = self.server.server_address[1]
        serve_in_thread(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    server = Canary()
    yield server
    server.close()


@pytest.fixture
def redirector(canary: Canary) -> Iterator[Redirector]:
    server = Redirector(f"http://127.0.0.1:{canary.port}/stolen")
    yield server
    server.close()


@pytest.fixture
def hostile_app(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[Flask]:
    """The app as in production, except that the redirector's own address is allowed."""
    app = create_app(app_settings(tmp_path, database_url, redis_url, POSTBACK_ALLOWED_NETWORKS=ALLOWED))
    Base.metadata.create_all(get_db(app).engine)
    yield app
    get_db(app).dispose()
