"""Edits of the parties' details the console's administration pages offer beyond `dispatcher.account_admin`
(which lists, deactivates, resets and rotates): names and emails, a program's terms, traffic sources, and the
audit entry of an account created there.

Each edit checks its input as creation does (a `FieldError` names the field and the value, nothing is
changed), and writes one audit entry with each changed field as `[before, after]` (never a secret: the
edited fields hold none). An edit that changes nothing writes nothing. The caller commits.

A program's new commission applies to transactions recorded from then on: a recorded transaction keeps the
commission it was recorded with. (An advertiser's later amount adjustment of an earlier sale is computed with
the program's terms at the time of that adjustment, as `dispatcher.ledger.status` does.) Its currency cannot
change once it has transactions: their amounts, and their adjustments, are in the currency they were in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher import accounts, validation
from dispatcher.account_admin import Party, audit, existing
from dispatcher.models import Advertiser, Program, Publisher, TrafficSource, Transaction


def record_created(session: Session, party: Party, by: int, **detail: Any) -> None:
    """The audit entry of a party created on the console (`detail` holds no secret)."""
    audit(session, by, "create", party, **detail)


def edit_publisher(session: Session, publisher_id: int, *, name: str, email: str, by: int) -> list[str]:
    """A new name and email (unique among publishers); returns the names of the fields that changed."""
    publisher = existing(session, Publisher, publisher_id)
    clean_email = validation.email("email", email)
    wanted = {"name": validation.text("name", name), "email": clean_email}
    taken = select(Publisher.id).where(Publisher.email == clean_email, Publisher.id != publisher.id)
    if session.scalar(taken) is not None:
        raise validation.FieldError("email", email, "is already registered to a publisher")
    return _apply(session, publisher, wanted, by)


def edit_advertiser(session: Session, advertiser_id: int, *, name: str, by: int) -> list[str]:
    advertiser = existing(session, Advertiser, advertiser_id)
    return _apply(session, advertiser, {"name": validation.text("name", name)}, by)


def edit_program(session: Session, program_id: int, *, by: int, **terms: Any) -> list[str]:
    """New terms (the keywords of `accounts.program_terms`); the advertiser of a program never changes."""
    program = existing(session, Program, program_id)
    wanted = accounts.program_terms(**terms)
    if wanted["currency"] != program.currency and _has_transactions(session, program.id):
        raise validation.FieldError(
            "currency",
            terms["currency"],
            f"cannot change: the program has transactions in {program.currency} (create a new program)",
        )
    return _apply(session, program, wanted, by)


def add_traffic_source(session: Session, publisher_id: int, name: str, *, by: int) -> TrafficSource:
    source = accounts.create_traffic_source(session, publisher_id, name)
    audit(session, by, "create", source, publisher_id=source.publisher_id, name=source.name)
    return source


def rename_traffic_source(
    session: Session, publisher_id: int, source_id: int, name: str, *, by: int
) -> TrafficSource:
    source = _own_source(session, publisher_id, source_id)
    before = source.name
    accounts.rename_traffic_source(session, source, name)
    if source.name != before:
        audit(session, by, "edit", source, publisher_id=publisher_id, changes={"name": [before, source.name]})
    return source


def set_traffic_source_active(
    session: Session, publisher_id: int, source_id: int, active: bool, *, by: int | None = None
) -> bool:
    """Deactivate (or reactivate) a traffic source: its new clicks are refused with a 400 naming `ts`; its
    clicks, sales and postbacks so far stand, and a sale on an earlier click of it is still recorded (the
    cookie window the publisher was promised). True if it changed."""
    source = _own_source(session, publisher_id, source_id)
    if source.active == active:
        return False
    source.active = active
    audit(session, by, "activate" if active else "deactivate", source, publisher_id=publisher_id)
    return True


def _own_source(session: Session, publisher_id: int, source_id: int) -> TrafficSource:
    source = existing(session, TrafficSource, source_id)
    if source.publisher_id != publisher_id:  # another publisher's source is not one of this one's
        raise validation.FieldError(
            "traffic_source_id", source_id, "is not a traffic source of this publisher"
        )
    return source


def _has_transactions(session: Session, program_id: int) -> bool:
    return (
        session.scalar(select(Transaction.id).where(Transaction.program_id == program_id).limit(1))
        is not None
    )


def _apply(session: Session, party: Party, wanted: dict[str, Any], by: int) -> list[str]:
    changes = {
        field: [_plain(getattr(party, field)), _plain(value)]
        for field, value in wanted.items()
        if getattr(party, field) != value
    }
    for field in changes:
        setattr(party, field, wanted[field])
    if changes:
        audit(session, by, "edit", party, changes=changes)
        session.flush()
    return sorted(changes)


def _plain(value: Any) -> Any:
    """As the audit log's JSON keeps it: an amount as its digits without trailing zeros (PostgreSQL reads
    10% back as 10.0000, SQLite as 10: the log says 10 on both)."""
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return value
