"""GET /c/<program_id>: the tracking link. Records the click; redirects to the advertiser's landing page.

The hottest endpoint of a network, so a good click is answered in front of Flask (see
dispatcher.web.fast_path): Flask's per-request work costs more than recording the click, and a click needs
none of it. The fast path sends what the Flask view sent: the 302 with the same body, `Cache-Control:
no-store` and the app's security headers. Anything else (another method or path shape, a refused click, a
failure) is Flask's: the view raises the refusal or error the fast path met, so that the usual error pages
and logging answer it. A refused click is never recorded twice: the view does not run the statement again.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Flask, abort, current_app, redirect, request
from flask.typing import ResponseReturnValue
from markupsafe import escape
from werkzeug.urls import iri_to_uri

from dispatcher.db import get_db
from dispatcher.ledger import ClickRequest, ProgramNotFound, RecordedClick, record_click
from dispatcher.ledger.clicks import SUB_ID_NAMES, unused_marker, with_click_id
from dispatcher.models.types import MAX_ID
from dispatcher.web.fast_path import Answer, Environ, Route, raise_failure, serve_fast

blueprint = Blueprint("clicks", __name__)

# Canonical ids only (no sign, no leading zero); any other spelling is left to Flask's router.
_PATH = re.compile(r"/c/([1-9][0-9]{0,18})")


@blueprint.get("/c/<int:program_id>")
def track(program_id: int) -> ResponseReturnValue:
    try:
        raise_failure(request.environ)
        # The same work as the fast path, for requests it does not take (HEAD, /c/007).
        with get_db(current_app).driver() as connection:
            recorded = record_click(connection, click_request(program_id, request.environ))
    except ProgramNotFound:
        abort(404, description=f"There is no active program {program_id}.")
    response = redirect(recorded.redirect_url, 302)
    response.headers.update(_NO_STORE)
    return response


def click_request(program_id: int, environ: dict[str, Any]) -> ClickRequest:
    # One pass over the query string, as werkzeug parses it (`request.args`), first value of each name.
    pairs = parse_qsl(
        environ.get("QUERY_STRING", "").encode("latin1").decode(),
        keep_blank_values=True,
        errors="werkzeug.url_quote",
    )
    args: dict[str, str] = {}
    for name, value in pairs:
        args.setdefault(name, value)
    return ClickRequest(
        program_id=program_id,
        publisher_id=args.get("pub"),
        traffic_source_id=args.get("ts"),
        sub_ids={name: args.get(name) for name in SUB_ID_NAMES},
        ip=environ.get("REMOTE_ADDR"),
        user_agent=environ.get("HTTP_USER_AGENT") or None,
    )


# Every click must reach us: a cached redirect would skip recording it.
_NO_STORE = {"Cache-Control": "no-store"}


def _answer_click(app: Flask, environ: Environ, program_id: int) -> Answer:
    with get_db(app).driver() as connection:
        recorded = record_click(connection, click_request(program_id, environ))
    location, page = _answer(recorded)
    headers = (("Location", location), *_NO_STORE.items())
    return Answer("302 FOUND", "text/html; charset=utf-8", page.encode(), headers)


def _program_id(environ: Environ) -> int | None:
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
    if match is None or int(match[1]) > MAX_ID:
        return None
    return int(match[1])


def _answer(recorded: RecordedClick) -> tuple[str, str]:
    """The Location header (the URL as werkzeug sends it, `iri_to_uri`) and the page."""
    around = _answer_around_click_id(recorded.landing_url)
    if around is None:
        url = recorded.redirect_url
        return iri_to_uri(url), _redirect_page(url)
    location, page = around
    return recorded.click_id.join(location), recorded.click_id.join(page)


@functools.lru_cache(maxsize=4096)
def _answer_around_click_id(landing_url: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The answer for a program's landing URL, cut where the click id goes (URL-safe, so `iri_to_uri` and
    HTML escaping leave it as it is): worked out once per landing URL, not on every click. None where the
    cut is not exact (a `{clickid}` in the host name, which `iri_to_uri` lowercases)."""
    marker = unused_marker(landing_url, _redirect_page(""))
    marked = with_click_id(landing_url, marker)
    location, page = iri_to_uri(marked).split(marker), _redirect_page(marked).split(marker)
    places = marked.count(marker)
    if len(location) != places + 1 or len(page) != 2 * places + 1:
        return None
    return tuple(location), tuple(page)


def _redirect_page(url: str) -> str:
    """The body werkzeug's `redirect` sends, for clients that do not follow redirects."""
    link = escape(url)
    return (
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
        "<p>You should be redirected automatically to the target URL: "
        f'<a href="{link}">{link}</a>. If not, click the link.\n'
    )


serve_fast(blueprint, Route(_program_id, _answer_click))
