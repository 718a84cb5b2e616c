"""Request ids and the access log: a WSGI middleware around everything the app answers (the click fast path
included, which Flask's request hooks never see).

Each request gets an id: the caller's `X-Request-ID` when it is a short run of safe characters (a proxy or
load balancer in front names the request, and its logs and ours then meet), else a new one. The id is echoed
in the response's `X-Request-ID` and carried by every log line written while the app answers it. Then one
access line: method, path, status, duration, id, never the query string (S2S tokens live there).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from flask import Flask

from dispatcher import logs

HEADER = "X-Request-ID"
# Longer or stranger values are replaced, not echoed: they would go into every log line and a response header.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_LOGGED_PATH = 1024

log = logging.getLogger("dispatcher.access")

Environ = dict[str, Any]
StartResponse = Any


def request_id_from(header: str | None) -> str:
    """The caller's id when it is safe to log and echo, else a new one."""
    if header is not None and SAFE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class AccessLog:
    def __init__(self, app: Any) -> None:
        self.app = app  # the wrapped WSGI callable, named as werkzeug's middleware name it

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        started = time.perf_counter()
        statuses: list[str] = []

        def start_with_id(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        with logs.scope(request_id=request_id):
            try:
                # The time to the answer's start: a streamed body (a CSV export) goes on after this line.
                return self.app(environ, start_with_id)  # type: ignore[no-any-return]
            finally:
                if log.isEnabledFor(logging.INFO):
                    _log_access(environ, statuses[-1] if statuses else "500", started)


def _log_access(environ: Environ, status_line: str, started: float) -> None:
    method = _printable(environ.get("REQUEST_METHOD", ""))
    path = _printable(_utf8(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")))[:MAX_LOGGED_PATH]
    status = int(status_line.split(" ", 1)[0])
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    log.info(
        "%s %s %d %.1f ms",
        method,
        path,
        status,
        duration_ms,
        extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms},
    )


def _utf8(wsgi_string: str) -> str:
    # WSGI hands the path over as latin-1 characters of the raw bytes; browsers send UTF-8.
    try:
        return wsgi_string.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return wsgi_string


def _printable(text: str) -> str:
    # A decoded %0A in a path must not start a forged line in a text log.
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def init_app(app: Flask) -> None:
    """Wrap the app's WSGI callable; after the blueprints (the fast path is theirs), before ProxyFix."""
    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
