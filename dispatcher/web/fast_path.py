"""Answering the hottest requests in front of Flask: a tracking click (`GET /c/<id>`) and a reported sale
(`POST /api/v1/transactions`).

Flask's per-request work (request context, session cookie and its signing serializer, the login manager's
hooks, URL matching, Response and Headers objects) costs about as much as the database work of a click, and a
fifth to two fifths of the CPU of a sale's request; neither needs any of it. Measured on PostgreSQL with
`bench.intake` (4 December): clicks went x1.14-1.37 as fast under gunicorn ("click fast path gain", 8 runs). A
sale took x0.56-0.80 of the CPU and x0.64-0.89 of the time in its request's thread (the bench's in-process
lines, 5 runs); under gunicorn, in the same 8 runs, x0.94-1.38 (median x1.01), its gunicorn CPU a sale
1,258-1,639 us against 1,480-2,457 without it (4 of them): a saving those rounds' noise hides. `FastPath` is a
WSGI middleware in front of the Flask app; a blueprint adds a `Route` to it with `serve_fast`. A route claims
a request by its method and path (`match`, no side effects) and answers it (`answer`) with what the Flask view
would have sent: the same status, body and headers, plus the app's security headers, which the middleware adds
to every answer.

Anything else is Flask's. A request no route claims goes to Flask untouched. When `answer` raises (a
refusal or an error), the middleware leaves the exception in the environ and hands the request to Flask,
whose view calls `raise_failure` first thing: the exception is raised there, so the usual error handlers,
pages and logging answer it, and the view does not do the work (read the body, record the sale) again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from flask import Blueprint, Flask
from flask.blueprints import BlueprintSetupState

from dispatcher.web.pages import HEADERS

Environ = dict[str, Any]

# Where the middleware leaves what went wrong, for the view to raise.
FAILURE_KEY = "dispatcher.fast_path_failure"
_SECURITY_HEADERS = tuple(HEADERS.items())


class Answer(NamedTuple):
    status: str  # as werkzeug spells it: "302 FOUND", "201 CREATED"
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()  # the view's own; Content-Length and security headers are added


@dataclass(frozen=True)
class Route:
    # What `answer` needs from the request line (a program id, say), or None: not this route's request.
    match: Callable[[Environ], Any | None]
    answer: Callable[[Flask, Environ, Any], Answer]


class FastPath:
    """WSGI middleware answering its routes' requests without Flask (see the module docstring)."""

    def __init__(self, app: Flask, wsgi_app: Any) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.routes: list[Route] = []

    def __call__(self, environ: Environ, start_response: Any) -> Iterable[bytes]:
        for route in self.routes:
            matched = route.match(environ)
            if matched is not None:
                break
        else:
            return self.wsgi_app(environ, start_response)  # type: ignore[no-any-return]
        try:
            answer = route.answer(self.app, environ, matched)
        except Exception as exc:  # noqa: BLE001 - not swallowed: the view raises it (error page, logging)
            environ[FAILURE_KEY] = exc
            return self.wsgi_app(environ, start_response)  # type: ignore[no-any-return]
        start_response(
            answer.status,
            [
                ("Content-Type", answer.content_type),
                ("Content-Length", str(len(answer.body))),
                *answer.headers,
                *_SECURITY_HEADERS,
            ],
        )
        return [answer.body]


def serve_fast(blueprint: Blueprint, route: Route) -> None:
    """Answer `route` in front of Flask in every app the blueprint is registered on."""

    def install(state: BlueprintSetupState) -> None:
        app = cast(Flask, state.app)
        if not isinstance(app.wsgi_app, FastPath):
            # One middleware for every route. Installed while the blueprints are registered, so before the
            # app factory wraps everything in ProxyFix: the routes read the client's REMOTE_ADDR through it.
            app.wsgi_app = FastPath(app, app.wsgi_app)  # type: ignore[method-assign]
        app.wsgi_app.routes.append(route)

    blueprint.record_once(install)


def raise_failure(environ: Environ) -> None:
    """Raise what the middleware met answering this request, if anything: the view's first step."""
    failure: BaseException | None = environ.pop(FAILURE_KEY, None)
    if failure is not None:
        raise failure
