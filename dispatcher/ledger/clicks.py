"""Clicks on tracking links: check who sent it and where it goes, record it, and say where to redirect.

This is the hottest path of a network, so a good click is one statement: an INSERT ... SELECT that reads the
program, its advertiser, the publisher and the traffic source, inserts the click only when all of them are
active and belong together, and returns the landing URL. It checks and records in one step, so it is never
half-done and never sees the network change in between. Only a click it refuses costs more: one SELECT that
says why (404 for the program, 400 naming `pub` or `ts`: not the publisher's, or deactivated).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import Connection, String, bindparam, insert, literal_column, select

from dispatcher.db import fetch
from dispatcher.driver_sql import DriverConnection
from dispatcher.ledger import fields, ids
from dispatcher.ledger.tables import advertisers, clicks, programs, publishers, traffic_sources
from dispatcher.models.ledger import SUB_ID_LENGTH
from dispatcher.models.types import utcnow
from dispatcher.validation import FieldError

SUB_ID_NAMES = ("fobs", "fobs2", "fobs3", "fobs4", "fobs5")
USER_AGENT_LENGTH = 512
CLICK_ID_PLACEHOLDER = "{clickid}"


class ProgramNotFound(LookupError):
    """Unknown or inactive program: a 404, never a redirect somewhere else."""


@dataclass(frozen=True)
class ClickRequest:
    program_id: int
    publisher_id: object
    traffic_source_id: object
    sub_ids: dict[str, object]
    ip: str | None = None
    user_agent: str | None = None


class RecordedClick(NamedTuple):
    landing_url: str  # the program's, as stored
    click_id: str

    @property
    def redirect_url(self) -> str:
        """Where the click goes: the landing URL carrying the click id."""
        return with_click_id(self.landing_url, self.click_id)


def record_click(connection: Connection | DriverConnection, request: ClickRequest) -> RecordedClick:
    """Record the click (committed)."""
    params: dict[str, Any] = {
        name: fields.optional_text(name, request.sub_ids.get(name), max_length=SUB_ID_LENGTH)
        for name in SUB_ID_NAMES
    }
    params.update(
        click_id=ids.new_click_id(),
        program_id=request.program_id,
        publisher_id=_required_id("pub", request.publisher_id),
        traffic_source_id=_required_id("ts", request.traffic_source_id),
        ip=request.ip[:45] if request.ip else None,
        user_agent=request.user_agent[:USER_AGENT_LENGTH] if request.user_agent else None,
        created_at=utcnow(),
    )
    recorded = fetch(connection, _RECORD, params)
    connection.commit()
    if not recorded:
        found = fetch(connection, _CHECK, {key: params[key] for key in _CHECKED})
        connection.rollback()  # ends the check's read transaction
        raise _refusal(found[0] if found else None, params)
    return RecordedClick(recorded[0].landing_url, params["click_id"])


_PASSED = ("click_id", *SUB_ID_NAMES, "ip", "user_agent", "created_at")
_VALID_CLICK = (
    select(
        programs.c.id,
        publishers.c.id,
        traffic_sources.c.id,
        *(bindparam(name, type_=clicks.c[name].type) for name in _PASSED),
    )
    .join_from(programs, advertisers, advertisers.c.id == programs.c.advertiser_id)
    .join(publishers, publishers.c.id == bindparam("publisher_id"))
    .join(
        traffic_sources,
        (traffic_sources.c.id == bindparam("traffic_source_id"))
        & (traffic_sources.c.publisher_id == publishers.c.id),
    )
    .where(
        programs.c.id == bindparam("program_id"),
        programs.c.active.is_(True),
        advertisers.c.active.is_(True),
        publishers.c.active.is_(True),
        traffic_sources.c.active.is_(True),
    )
)
# SQLAlchemy does not correlate a subquery in RETURNING with the inserted row, so this one is written out;
# SQLite and PostgreSQL both accept it.
_LANDING_URL = literal_column(
    f"(SELECT landing.{programs.c.landing_url.name} FROM {programs.name} AS landing"
    f" WHERE landing.{programs.c.id.name} = {clicks.name}.{clicks.c.program_id.name})",
    String,
).label("landing_url")
_RECORD = (
    insert(clicks)
    .from_select(["program_id", "publisher_id", "traffic_source_id", *_PASSED], _VALID_CLICK)
    .returning(_LANDING_URL)
)

_CHECKED = ("program_id", "publisher_id", "traffic_source_id")
_CHECK = (
    select(
        (programs.c.active & advertisers.c.active).label("program_active"),
        select(traffic_sources.c.publisher_id)
        .where(traffic_sources.c.id == bindparam("traffic_source_id"))
        .scalar_subquery()
        .label("source_owner"),
        select(traffic_sources.c.active)
        .where(traffic_sources.c.id == bindparam("traffic_source_id"))
        .scalar_subquery()
        .label("source_active"),
        select(publishers.c.active)
        .where(publishers.c.id == bindparam("publisher_id"))
        .scalar_subquery()
        .label("publisher_active"),
    )
    .join_from(programs, advertisers, advertisers.c.id == programs.c.advertiser_id)
    .where(programs.c.id == bindparam("program_id"))
)


def _refusal(found: Any, params: dict[str, Any]) -> Exception:
    """Why the click was not recorded."""
    if found is None or not found.program_active:
        return ProgramNotFound(params["program_id"])
    if not found.publisher_active:
        return FieldError("pub", params["publisher_id"], "is not an active publisher")
    if found.source_owner != params["publisher_id"]:
        return FieldError(
            "ts",
            params["traffic_source_id"],
            f"is not a traffic source of publisher {params['publisher_id']}",
        )
    if not found.source_active:
        return FieldError("ts", params["traffic_source_id"], "is a deactivated traffic source")
    # Everything checks out now: the network changed between the two statements. Refused all the same.
    return ProgramNotFound(params["program_id"])


def _required_id(name: str, value: object) -> int:
    number = fields.optional_id(name, value)
    if number is None:
        raise FieldError(name, value, "is required")
    return number


def with_click_id(landing_url: str, click_id: str) -> str:
    """`{clickid}` in the landing URL is replaced; otherwise `clickid=` is added to its query."""
    return quote(click_id, safe="").join(_around_click_id(landing_url))


@functools.lru_cache(maxsize=4096)
def _around_click_id(landing_url: str) -> tuple[str, ...]:
    """The landing URL cut where the click id goes: a program's URL is parsed once, not on every click."""
    if CLICK_ID_PLACEHOLDER in landing_url:
        return tuple(landing_url.split(CLICK_ID_PLACEHOLDER))
    marker = unused_marker(landing_url)
    # Appended to the query as it is: re-encoding the advertiser's own parameters could change them.
    parts = urlsplit(landing_url)
    added = f"clickid={marker}"
    marked = urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))
    return tuple(marked.split(marker))


def unused_marker(*texts: str) -> str:
    """A URL-safe word none of the texts contains: where it is put, a cut is exact."""
    marker = "CLICKID"
    while any(marker in text for text in texts):
        marker += "_"
    return marker
