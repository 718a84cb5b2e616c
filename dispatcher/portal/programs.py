"""The programs a postback may be scoped to.

Every program of the network is open to every publisher (there is no per-publisher list of programs), so the
choice is every running program, plus any already in the postback's scope that has stopped since: a stopped
program (it or its advertiser inactive) brings no new sales, but its past sales still get approved and
reversed, and a scope keeps it until the publisher removes it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from dispatcher.models import Advertiser, Program


@dataclass(frozen=True)
class ProgramChoice:
    id: int
    name: str
    advertiser: str
    running: bool


def _rows(session: Session) -> list[ProgramChoice]:
    query = (
        select(Program.id, Program.name, Advertiser.name, and_(Program.active, Advertiser.active))
        .join(Advertiser, Advertiser.id == Program.advertiser_id)
        .order_by(Program.name, Program.id)
    )
    return [ProgramChoice(row[0], row[1], row[2], bool(row[3])) for row in session.execute(query)]


def choosable(session: Session, scoped: Collection[int] = ()) -> dict[int, bool]:
    """Every program id -> whether a postback whose scope is `scoped` may name it (`postback_rules.check`)."""
    return {row.id: row.running or row.id in scoped for row in _rows(session)}


def listed(session: Session, scoped: Collection[int] = ()) -> list[ProgramChoice]:
    """The form's list: running programs and the scope's own, by name."""
    return [row for row in _rows(session) if row.running or row.id in scoped]
