"""Creating the parties: publishers, traffic sources, advertisers (and their users), programs and staff (and
what a program's terms and a traffic source's name must be, for their edits too).

Each function validates its input (raising `FieldError`) and adds rows to the session; the caller commits.
Secrets are returned once, here, and only their hashes are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher import validation
from dispatcher.credentials import hash_password, new_token, password_method_of
from dispatcher.models import (
    Advertiser,
    AdvertiserUser,
    Program,
    Publisher,
    StaffRole,
    StaffUser,
    TrafficSource,
)

PUBLISHER_TOKEN_KIND = "pub"
ADVERTISER_KEY_KIND = "adv"
S2S_TOKEN_KIND = "s2s"


@dataclass(frozen=True)
class CreatedPublisher:
    publisher: Publisher
    api_token: str


@dataclass(frozen=True)
class CreatedAdvertiser:
    advertiser: Advertiser
    api_key: str
    s2s_token: str


def create_publisher(session: Session, name: str, email: str, password: str) -> CreatedPublisher:
    clean_email = validation.email("email", email)
    publisher = Publisher(
        name=validation.text("name", name),
        email=clean_email,
        password_hash=hash_password(validation.password("password", password), password_method_of(session)),
    )
    if session.scalar(select(Publisher.id).where(Publisher.email == clean_email)) is not None:
        raise validation.FieldError("email", email, "is already registered to a publisher")
    token = new_token(PUBLISHER_TOKEN_KIND)
    publisher.api_token_id, publisher.api_token_hash = token.key_id, token.secret_hash
    session.add(publisher)
    session.flush()
    return CreatedPublisher(publisher, token.token)


def create_traffic_source(session: Session, publisher_id: str | int, name: str) -> TrafficSource:
    pid = validation.positive_id("publisher_id", publisher_id)
    clean_name = validation.text("name", name)
    if session.get(Publisher, pid) is None:
        raise validation.FieldError("publisher_id", publisher_id, "is not a publisher")
    taken = select(TrafficSource.id).where(
        TrafficSource.publisher_id == pid, TrafficSource.name == clean_name
    )
    if session.scalar(taken) is not None:
        raise validation.FieldError("name", name, "is already a traffic source of this publisher")
    source = TrafficSource(publisher_id=pid, name=clean_name)
    session.add(source)
    session.flush()
    return source


def create_advertiser(session: Session, name: str) -> CreatedAdvertiser:
    advertiser = Advertiser(name=validation.text("name", name))
    api_key, s2s_token = new_token(ADVERTISER_KEY_KIND), new_token(S2S_TOKEN_KIND)
    advertiser.api_key_id, advertiser.api_key_hash = api_key.key_id, api_key.secret_hash
    advertiser.s2s_token_id, advertiser.s2s_token_hash = s2s_token.key_id, s2s_token.secret_hash
    session.add(advertiser)
    session.flush()
    return CreatedAdvertiser(advertiser, api_key.token, s2s_token.token)


def create_program(
    session: Session,
    advertiser_id: str | int,
    name: str,
    *,
    landing_url: str,
    commission: str,
    currency: str = "USD",
    allow_clickless: bool = False,
    allow_advertiser_commission: bool = False,
) -> Program:
    aid = validation.positive_id("advertiser_id", advertiser_id)
    program = Program(
        advertiser_id=aid,
        **program_terms(
            name=name,
            landing_url=landing_url,
            commission=commission,
            currency=currency,
            allow_clickless=allow_clickless,
            allow_advertiser_commission=allow_advertiser_commission,
        ),
    )
    if session.get(Advertiser, aid) is None:
        raise validation.FieldError("advertiser_id", advertiser_id, "is not an advertiser")
    session.add(program)
    session.flush()
    return program


def program_terms(
    *,
    name: str,
    landing_url: str,
    commission: str,
    currency: str,
    allow_clickless: bool,
    allow_advertiser_commission: bool,
) -> dict[str, Any]:
    """A program's columns from what a person typed, each checked (a `FieldError` names the first bad one)."""
    commission_type, commission_value = validation.commission("commission", commission)
    return {
        "name": validation.text("name", name),
        "landing_url": validation.http_url("landing_url", landing_url),
        "commission_type": commission_type.value,
        "commission_value": commission_value,
        "currency": validation.currency("currency", currency),
        "allow_clickless": allow_clickless,
        "allow_advertiser_commission": allow_advertiser_commission,
    }


def rename_traffic_source(session: Session, source: TrafficSource, name: str) -> TrafficSource:
    clean = validation.text("name", name)
    taken = select(TrafficSource.id).where(
        TrafficSource.publisher_id == source.publisher_id,
        TrafficSource.name == clean,
        TrafficSource.id != source.id,
    )
    if session.scalar(taken) is not None:
        raise validation.FieldError("name", name, "is already a traffic source of this publisher")
    source.name = clean
    session.flush()
    return source


def create_staff(
    session: Session, email: str, password: str, role: str = StaffRole.SUPPORT.value
) -> StaffUser:
    clean_email = validation.email("email", email)
    if role not in {choice.value for choice in StaffRole}:
        raise validation.FieldError("role", role, "must be one of support, admin")
    staff = StaffUser(
        email=clean_email,
        password_hash=hash_password(validation.password("password", password), password_method_of(session)),
        role=role,
    )
    if session.scalar(select(StaffUser.id).where(StaffUser.email == clean_email)) is not None:
        raise validation.FieldError("email", email, "is already registered to a staff user")
    session.add(staff)
    session.flush()
    return staff


def create_advertiser_user(
    session: Session, advertiser_id: str | int, email: str, password: str
) -> AdvertiserUser:
    """A login to the advertiser portal for one advertiser (its pages show that advertiser's data only)."""
    aid = validation.positive_id("advertiser_id", advertiser_id)
    clean_email = validation.email("email", email)
    user = AdvertiserUser(
        advertiser_id=aid,
        email=clean_email,
        password_hash=hash_password(validation.password("password", password), password_method_of(session)),
    )
    if session.get(Advertiser, aid) is None:
        raise validation.FieldError("advertiser_id", advertiser_id, "is not an advertiser")
    if session.scalar(select(AdvertiserUser.id).where(AdvertiserUser.email == clean_email)) is not None:
        raise validation.FieldError("email", email, "is already registered to an advertiser user")
    session.add(user)
    session.flush()
    return user
