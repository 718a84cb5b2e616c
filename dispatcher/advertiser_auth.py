"""Advertiser users' identity: the advertiser portal's `advertiser:<id>` login kind and its password check.

An advertiser user signs in at `/advertiser/login` through the same Flask-Login session as publishers and
staff; the namespaced user id keeps the kinds apart (only an `advertiser:` session passes the portal's guard).
A user counts as signed in only while both it and its advertiser are active: deactivating either ends its
sessions on their next request (the loader reads both), and the user's own session epoch ends them for good.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.auth import account_for_password
from dispatcher.db import request_session
from dispatcher.login import PortalUser, register_kind
from dispatcher.models import Advertiser, AdvertiserUser

ADVERTISER_USER = "advertiser"


@dataclass(frozen=True)
class AdvertiserPrincipal(PortalUser):
    """A signed-in advertiser user (`name` is the advertiser's name, what its pages are about)."""

    advertiser_id: int = 0


def advertiser_user(user: AdvertiserUser) -> AdvertiserPrincipal:
    return AdvertiserPrincipal(
        ADVERTISER_USER,
        user.id,
        user.advertiser.name,
        user.email,
        user.active,
        epoch=user.session_epoch,
        time_zone=user.time_zone,
        advertiser_id=user.advertiser_id,
    )


def _load(user_id: int) -> PortalUser | None:
    session = request_session()
    found = session.execute(
        select(AdvertiserUser)
        .join(Advertiser)
        .where(AdvertiserUser.id == user_id, AdvertiserUser.active.is_(True), Advertiser.active.is_(True))
    ).scalar_one_or_none()
    return advertiser_user(found) if found is not None else None


def register() -> None:
    register_kind(ADVERTISER_USER, _load, AdvertiserUser)


def authenticate(session: Session, email: str, password: str) -> AdvertiserUser | None:
    """The active user with this email and password whose advertiser is active too, else None."""
    user: AdvertiserUser | None = account_for_password(session, AdvertiserUser, email, password)
    if user is None or not user.advertiser.active:
        return None
    return user
