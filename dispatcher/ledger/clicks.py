"""Clicks on tracking links: check who sent it and where it goes, record it, and say where to redirect.

This is the hottest path of a network: one INSERT, then one SELECT that answers every check, in one
transaction; both statements are built once, at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatcher.ledger import fields, ids
from dispatcher.ledger.gate import write_turn
from dispatcher.models import Advertiser, Click, Program, Publisher, TrafficSource
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


def record_click(session: Session, request: ClickRequest) -> str:
    """Record the click and commit; returns the landing URL carrying the new click id."""
    subs = {
        name: fields.optional_text(name, request.sub_ids.get(name), max_length=SUB_ID_LENGTH)
        for name in SUB_ID_NAMES
    }
    row = {
        "click_id": ids.new_click_id(),
        "program_id": request.program_id,
        "publisher_id": _required_id("pub", request.publisher_id),
        "traffic_source_id": _required_id("ts", request.traffic_source_id),
        "ip": request.ip[:45] if request.ip else None,
        "user_agent": request.user_agent[:USER_AGENT_LENGTH] if request.user_agent else None,
        "created_at": utcnow(),
        **subs,
    }
    # Write first, then check in the same transaction, and roll back if the checks fail: the INSERT
    # takes SQLite's write lock as the transaction's first statement (see dispatcher.ledger.intake), and a
    # good click costs one transaction. Ids that do not exist fail the INSERT's foreign keys.
    # The session's engine, not the session: a click needs none of its bookkeeping, which costs as much
    # as the two statements.
    with write_turn(session), session.get_bind().engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(_INSERT, row)
            landing_url = _checked(connection.execute(_CHECK, _check_params(row)).first(), row)
        except (IntegrityError, ProgramNotFound, FieldError):
            transaction.rollback()
            landing_url = None
        else:
            transaction.commit()
    if landing_url is None:  # raises the reason
        _checked(session.connection().execute(_CHECK, _check_params(row)).first(), row)
        raise ProgramNotFound(row["program_id"])  # ids that vanished between the INSERT and the check
    return with_click_id(landing_url, str(row["click_id"]))


_INSERT = insert(cast(Table, Click.__table__))
_CHECK = (
    select(
        Program.landing_url,
        (Program.active & Advertiser.active).label("program_active"),
        select(TrafficSource.publisher_id)
        .where(TrafficSource.id == bindparam("traffic_source_id"))
        .scalar_subquery()
        .label("source_owner"),
        select(Publisher.active)
        .where(Publisher.id == bindparam("publisher_id"))
        .scalar_subquery()
        .label("pub"),
    )
    .join(Advertiser, Advertiser.id == Program.advertiser_id)
    .where(Program.id == bindparam("program_id"))
)


def _check_params(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in ("program_id", "publisher_id", "traffic_source_id")}


def _checked(found: Any, row: dict[str, Any]) -> str:
    """The landing URL, or the reason this click is refused."""
    if found is None or not found.program_active:
        raise ProgramNotFound(row["program_id"])
    if not found.pub:
        raise FieldError("pub", row["publisher_id"], "is not an active publisher")
    if found.source_owner != row["publisher_id"]:
        raise FieldError(
            "ts", row["traffic_source_id"], f"is not a traffic source of publisher {row['publisher_id']}"
        )
    return str(found.landing_url)


def _required_id(name: str, value: object) -> int:
    number = fields.optional_id(name, value)
    if number is None:
        raise FieldError(name, value, "is required")
    return number


def with_click_id(landing_url: str, click_id: str) -> str:
    """`{clickid}` in the landing URL is replaced; otherwise `clickid=` is added to its query."""
    if CLICK_ID_PLACEHOLDER in landing_url:
        return landing_url.replace(CLICK_ID_PLACEHOLDER, quote(click_id, safe=""))
    # Appended to the query as it is: re-encoding the advertiser's own parameters could change them.
    parts = urlsplit(landing_url)
    added = f"clickid={quote(click_id, safe='')}"
    return urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))
