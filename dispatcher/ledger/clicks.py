"""Clicks on tracking links: check who sent it and where it goes, record it, and say where to redirect.

This is the hottest path of a network: one SELECT answers every check, then one INSERT. They are separate
database transactions for the reason given in `dispatcher.ledger.intake` (SQLite writers must start writing).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dispatcher.ledger import fields, ids
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
    publisher_id = _required_id("pub", request.publisher_id)
    source_id = _required_id("ts", request.traffic_source_id)
    landing_url = _check(session, request.program_id, publisher_id, source_id)
    session.commit()
    click_id = ids.new_click_id()
    session.execute(
        insert(Click),
        [
            {
                "click_id": click_id,
                "program_id": request.program_id,
                "publisher_id": publisher_id,
                "traffic_source_id": source_id,
                "ip": request.ip[:45] if request.ip else None,
                "user_agent": request.user_agent[:USER_AGENT_LENGTH] if request.user_agent else None,
                "created_at": utcnow(),
                **subs,
            }
        ],
    )
    session.commit()
    return with_click_id(landing_url, click_id)


def _required_id(name: str, value: object) -> int:
    number = fields.optional_id(name, value)
    if number is None:
        raise FieldError(name, value, "is required")
    return number


def _check(session: Session, program_id: int, publisher_id: int, source_id: int) -> str:
    source_owner = select(TrafficSource.publisher_id).where(TrafficSource.id == source_id).scalar_subquery()
    publisher_active = select(Publisher.active).where(Publisher.id == publisher_id).scalar_subquery()
    query = (
        select(Program.landing_url, Program.active, Advertiser.active, source_owner, publisher_active)
        .join(Advertiser, Advertiser.id == Program.advertiser_id)
        .where(Program.id == program_id)
    )
    row = session.execute(query).first()
    if row is None or not (row[1] and row[2]):
        raise ProgramNotFound(program_id)
    landing_url, _, _, owner, active = row
    if not active:
        raise FieldError("pub", publisher_id, "is not an active publisher")
    if owner != publisher_id:
        raise FieldError("ts", source_id, f"is not a traffic source of publisher {publisher_id}")
    return str(landing_url)


def with_click_id(landing_url: str, click_id: str) -> str:
    """`{clickid}` in the landing URL is replaced; otherwise `clickid=` is added to its query."""
    if CLICK_ID_PLACEHOLDER in landing_url:
        return landing_url.replace(CLICK_ID_PLACEHOLDER, quote(click_id, safe=""))
    # Appended to the query as it is: re-encoding the advertiser's own parameters could change them.
    parts = urlsplit(landing_url)
    added = f"clickid={quote(click_id, safe='')}"
    return urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))
