"""The network's account operations on existing parties (publishers, advertisers, programs, staff): list
them, deactivate and reactivate them, reset passwords, rotate secrets (an advertiser's with an optional grace
period, during which `dispatcher.auth` still accepts the replaced one). `dispatcher.accounts` creates them.

Deactivation keeps every row (the database is the record) and means, as on a real network:
- a publisher can no longer sign in to the portal (its open sessions end at once) nor use its API token; its
  live postbacks are paused with `PAUSED_WITH_PUBLISHER` as their reason, so a new sale creates no delivery
  for it and a still-pending delivery is closed as paused when a worker next picks it up (nothing is sent
  to a publisher the network has cut off; support can replay them after a reactivation). Clicks naming it
  are refused (400) and not recorded. Reactivating resumes only the postbacks this pause stopped, never
  one its publisher or support paused.
- an advertiser's API key and S2S token are refused (403 naming the deactivation) and its programs' links
  stop recording clicks; deliveries already created for its sales are still sent: the publishers earned them.
- a program's tracking links answer 404 instead of recording a click; sales on clicks made before stay
  reportable (the cookie window the publisher was promised).

- a staff user can no longer sign in to the console nor use its API token; its sessions end.
- an advertiser user can no longer sign in to the advertiser portal; its sessions end (as they do for every
  user of a deactivated advertiser: the portal checks the advertiser on every request).

Each change is written to the audit log: by the staff user `by` names (`via: console`, the administration
pages), by an advertiser user's rotation (`via: advertiser portal`), or with none (`via: cli`); the caller
commits. The lists take an optional search and keyset page (`after` an id) for the console; the CLI lists
everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from dispatcher import validation
from dispatcher.accounts import ADVERTISER_KEY_KIND, PUBLISHER_TOKEN_KIND, S2S_TOKEN_KIND
from dispatcher.credentials import hash_password, new_token, password_method_of
from dispatcher.delivery_details import iso_time
from dispatcher.ledger.fields import minor_unit
from dispatcher.models import (
    Advertiser,
    AdvertiserUser,
    AuditEntry,
    CommissionType,
    Postback,
    Program,
    Publisher,
    StaffUser,
    TrafficSource,
)
from dispatcher.models.types import MAX_ID, utcnow
from dispatcher.postback_pausing import set_active

NO_GRACE = timedelta(0)
MAX_GRACE = timedelta(days=30)
_DURATION = re.compile(r"(?P<amount>[0-9]{1,6})(?P<unit>[mhd])?")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
PAUSED_WITH_PUBLISHER = "Paused by the network: the publisher account is deactivated"
Party = Publisher | Advertiser | Program | StaffUser | TrafficSource | AdvertiserUser
P = TypeVar("P", Publisher, Advertiser, Program, StaffUser, TrafficSource, AdvertiserUser)


@dataclass(frozen=True)
class Rotated:
    secret: str  # show once, never store
    old_valid_until: datetime | None = None  # the end of the old one's grace period, if any


@dataclass(frozen=True)
class Change:
    id: int
    active: bool
    changed: bool  # False when it already was in that state
    postbacks: int = 0  # the publisher's postbacks this change paused or resumed


@dataclass(frozen=True)
class Window:
    """Which rows of a list: those whose name, email or id matches `search` (case-insensitive, a part of it;
    an id whole), after the row with id `after`, at most `limit`."""

    search: str | None = None
    after: int | None = None
    limit: int | None = None


EVERYTHING = Window()


def list_publishers(session: Session, window: Window = EVERYTHING) -> list[dict[str, Any]]:
    query = _windowed(select(Publisher), Publisher, (Publisher.name, Publisher.email), window)
    return [{**_common(p), "email": p.email} for p in session.scalars(query)]


def list_advertisers(session: Session, window: Window = EVERYTHING) -> list[dict[str, Any]]:
    query = _windowed(select(Advertiser), Advertiser, (Advertiser.name,), window)
    return [_common(a) for a in session.scalars(query)]


def list_programs(
    session: Session, advertiser_id: str | int | None = None, window: Window = EVERYTHING
) -> list[dict[str, Any]]:
    query = _windowed(
        select(Program, Advertiser.name).join(Advertiser), Program, (Program.name, Advertiser.name), window
    )
    if advertiser_id is not None:
        query = query.where(Program.advertiser_id == existing(session, Advertiser, advertiser_id).id)
    return [
        {
            **_common(program),
            "advertiser_id": program.advertiser_id,
            "advertiser": advertiser_name,
            "commission": commission_text(program),
            "currency": program.currency,
            "landing_url": program.landing_url,
        }
        for program, advertiser_name in session.execute(query)
    ]


def set_publisher_active(
    session: Session, publisher_id: str | int, active: bool, *, by: int | None = None
) -> Change:
    publisher = existing(session, Publisher, publisher_id)
    if publisher.active == active:
        return Change(publisher.id, active, changed=False)
    publisher.active = active
    if not active:
        # Sessions are checked against `active` on every request already; a new epoch also keeps them
        # from coming back to life on a reactivation.
        publisher.session_epoch += 1
    touched = (
        _pause_postbacks(session, publisher.id) if not active else _resume_postbacks(session, publisher.id)
    )
    audit(session, by, "activate" if active else "deactivate", publisher, postbacks=touched)
    return Change(publisher.id, active, changed=True, postbacks=touched)


def list_staff(session: Session, window: Window = EVERYTHING) -> list[dict[str, Any]]:
    rows = session.scalars(_windowed(select(StaffUser), StaffUser, (StaffUser.email,), window))
    return [
        {
            "id": staff.id,
            "email": staff.email,
            "role": staff.role,
            "status": "active" if staff.active else "deactivated",
            "created": iso_time(staff.created_at),
        }
        for staff in rows
    ]


def set_staff_active(session: Session, staff_id: str | int, active: bool, *, by: int | None = None) -> Change:
    return _set_login_active(session, existing(session, StaffUser, staff_id), active, by)


def list_advertiser_users(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(AdvertiserUser, Advertiser.name).join(Advertiser).order_by(AdvertiserUser.id)
    )
    return [
        {
            "id": user.id,
            "email": user.email,
            "advertiser_id": user.advertiser_id,
            "advertiser": advertiser_name,
            "status": "active" if user.active else "deactivated",
            "created": iso_time(user.created_at),
        }
        for user, advertiser_name in rows
    ]


def set_advertiser_user_active(
    session: Session, user_id: str | int, active: bool, *, by: int | None = None
) -> Change:
    return _set_login_active(session, existing(session, AdvertiserUser, user_id), active, by)


def _set_login_active(
    session: Session, account: StaffUser | AdvertiserUser, active: bool, by: int | None
) -> Change:
    """A staff or advertiser user's sign-in allowed or not; a deactivation ends its sessions."""
    if account.active == active:
        return Change(account.id, active, changed=False)
    account.active = active
    if not active:
        account.session_epoch += 1  # as for a publisher: no session comes back on a reactivation
    audit(session, by, "activate" if active else "deactivate", account)
    return Change(account.id, active, changed=True)


def reset_password(
    session: Session, kind: str, account_id: str | int, password: str, *, by: int | None = None
) -> int:
    """A new password for a publisher, staff or advertiser user (`kind`); every signed-in session of it
    ends."""
    account: Publisher | StaffUser | AdvertiserUser
    if kind == "staff":
        account = existing(session, StaffUser, account_id)
    elif kind == "advertiser-user":
        account = existing(session, AdvertiserUser, account_id)
    else:
        account = existing(session, Publisher, account_id)
    account.password_hash = hash_password(
        validation.password("password", password), password_method_of(session)
    )
    account.session_epoch += 1
    audit(session, by, "reset_password", account)
    return account.id


def set_advertiser_active(
    session: Session, advertiser_id: str | int, active: bool, *, by: int | None = None
) -> Change:
    return _set_active(session, existing(session, Advertiser, advertiser_id), active, by)


def set_program_active(
    session: Session, program_id: str | int, active: bool, *, by: int | None = None
) -> Change:
    return _set_active(session, existing(session, Program, program_id), active, by)


def grace_period(field: str, value: str) -> timedelta:
    """`0` (none), or a whole number with a unit: `90m`, `24h`, `7d`; at most `MAX_GRACE`."""
    match = _DURATION.fullmatch(value.strip())
    if match is None or (match["unit"] is None and int(match["amount"]) != 0):
        raise validation.FieldError(field, value, "must be 0 or a whole number of m, h or d (90m, 24h, 7d)")
    amount, unit = int(match["amount"]), match["unit"] or "m"
    period = timedelta(**{_UNITS[unit]: amount})
    if period > MAX_GRACE:
        raise validation.FieldError(field, value, f"must be at most {MAX_GRACE.days} days")
    return period


def rotate_advertiser_key(
    session: Session,
    advertiser_id: str | int,
    grace: timedelta = NO_GRACE,
    *,
    by: int | None = None,
    via: str | None = None,
) -> Rotated:
    """A new API key, returned once (only its hash is kept). The old one is refused from the commit on, or
    at the end of `grace` (and a grace period left by an earlier rotation ends now)."""
    return _rotate_advertiser_secret(session, advertiser_id, ADVERTISER_KEY_KIND, grace, by, via)


def rotate_advertiser_s2s_token(
    session: Session,
    advertiser_id: str | int,
    grace: timedelta = NO_GRACE,
    *,
    by: int | None = None,
    via: str | None = None,
) -> Rotated:
    """As `rotate_advertiser_key`, for the S2S token."""
    return _rotate_advertiser_secret(session, advertiser_id, S2S_TOKEN_KIND, grace, by, via)


# Per advertiser secret: its column stem (`<stem>_id`, `previous_<stem>_until`...) and its audit action.
_ADVERTISER_SECRETS = {
    ADVERTISER_KEY_KIND: ("api_key", "rotate_api_key"),
    S2S_TOKEN_KIND: ("s2s_token", "rotate_s2s_token"),
}


def _rotate_advertiser_secret(
    session: Session, advertiser_id: str | int, kind: str, grace: timedelta, by: int | None, via: str | None
) -> Rotated:
    advertiser = existing(session, Advertiser, advertiser_id)
    name, action = _ADVERTISER_SECRETS[kind]
    token = new_token(kind)
    until = utcnow() + grace if grace else None
    setattr(advertiser, f"previous_{name}_id", getattr(advertiser, f"{name}_id") if grace else None)
    setattr(advertiser, f"previous_{name}_hash", getattr(advertiser, f"{name}_hash") if grace else None)
    setattr(advertiser, f"previous_{name}_until", until)
    setattr(advertiser, f"{name}_id", token.key_id)
    setattr(advertiser, f"{name}_hash", token.secret_hash)
    audit(session, by, action, advertiser, via=via, grace_seconds=int(grace.total_seconds()))
    return Rotated(token.token, until)


def rotate_publisher_token(session: Session, publisher_id: str | int, *, by: int | None = None) -> Rotated:
    publisher = existing(session, Publisher, publisher_id)
    token = new_token(PUBLISHER_TOKEN_KIND)
    publisher.api_token_id, publisher.api_token_hash = token.key_id, token.secret_hash
    audit(session, by, "rotate_api_token", publisher)
    return Rotated(token.token)


def _set_active(session: Session, party: Advertiser | Program, active: bool, by: int | None) -> Change:
    if party.active == active:
        return Change(party.id, active, changed=False)
    party.active = active
    audit(session, by, "activate" if active else "deactivate", party)
    return Change(party.id, active, changed=True)


def _pause_postbacks(session: Session, publisher_id: int) -> int:
    live = select(Postback).where(
        Postback.publisher_id == publisher_id, Postback.active.is_(True), Postback.deleted_at.is_(None)
    )
    postbacks = list(session.scalars(live))
    for postback in postbacks:
        set_active(postback, False, PAUSED_WITH_PUBLISHER)
    return len(postbacks)


def _resume_postbacks(session: Session, publisher_id: int) -> int:
    paused = select(Postback).where(
        Postback.publisher_id == publisher_id,
        Postback.active.is_(False),
        Postback.deleted_at.is_(None),
        Postback.paused_reason == PAUSED_WITH_PUBLISHER,
    )
    postbacks = list(session.scalars(paused))
    for postback in postbacks:
        set_active(postback, True)
    return len(postbacks)


_NAMES: dict[type[Party], str] = {
    Publisher: "publisher",
    Advertiser: "advertiser",
    Program: "program",
    StaffUser: "staff",
    TrafficSource: "traffic_source",
    AdvertiserUser: "advertiser_user",
}
_NOUNS: dict[type[Party], str] = {
    Publisher: "a publisher",
    Advertiser: "an advertiser",
    Program: "a program",
    StaffUser: "a staff user",
    TrafficSource: "a traffic source",
    AdvertiserUser: "an advertiser user",
}


def existing(session: Session, model: type[P], party_id: str | int) -> P:
    """The row of that id, or a `FieldError` naming `<kind>_id` and the value."""
    field = f"{_NAMES[model]}_id"
    found = session.get(model, validation.positive_id(field, party_id))
    if found is None:
        raise validation.FieldError(field, party_id, f"is not {_NOUNS[model]}")
    return found


def audit(
    session: Session, by: int | None, action: str, party: Party, *, via: str | None = None, **detail: Any
) -> None:
    """An audit entry for a change of `party`: by staff user `by` on the console, from the CLI (None), or
    where `via` says (the advertiser portal). `detail` never holds a secret or a password."""
    session.add(
        AuditEntry(
            staff_user_id=by,
            action=action,
            target_type=_NAMES[type(party)],
            target_id=str(party.id),
            detail={"via": via or ("cli" if by is None else "console"), **detail},
        )
    )


def _windowed(
    query: Select[*tuple[Any, ...]], model: type[Party], columns: tuple[Any, ...], window: Window
) -> Select[*tuple[Any, ...]]:
    if window.search:
        term = window.search.strip().lower()
        matches = [func.lower(column).contains(term, autoescape=True) for column in columns]
        if term.isascii() and term.isdigit() and int(term) <= MAX_ID:
            matches.append(model.id == int(term))
        query = query.where(or_(*matches))
    if window.after is not None:
        query = query.where(model.id > window.after)
    query = query.order_by(model.id)
    return query if window.limit is None else query.limit(window.limit)


def _common(party: Publisher | Advertiser | Program) -> dict[str, Any]:
    return {
        "id": party.id,
        "name": party.name,
        "status": "active" if party.active else "deactivated",
        "created": iso_time(party.created_at),
    }


def commission_text(program: Program) -> str:
    """As `create-program --commission` takes it: 10% or 5.00 (the currency's minor unit)."""
    value = program.commission_value
    if program.commission_type == CommissionType.PERCENT.value:
        return f"{value.normalize():f}%"
    return str(value.quantize(minor_unit(program.currency)))
