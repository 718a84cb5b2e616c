"""Staff identity: the `staff:<id>` login kind, password checks, staff API tokens (`stf_<key id>_<secret>`).

Staff sign in at `/support/login` through the same Flask-Login session as publishers; the namespaced user id
keeps the two apart (a publisher session never passes `staff_required`, a staff session never passes the
portal's `publisher_required`). Staff API tokens work like publishers' (one indexed lookup by key id, a salted
hash of the secret) and are accepted on the publisher API's delivery routes, where staff see every publisher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec

from flask import g
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from dispatcher.auth import account_for_password, account_for_token, bearer_token
from dispatcher.credentials import new_token
from dispatcher.db import request_session
from dispatcher.login import PortalUser, register_kind
from dispatcher.models import StaffRole, StaffUser

P = ParamSpec("P")

STAFF = "staff"
STAFF_TOKEN_KIND = "stf"


@dataclass(frozen=True)
class StaffPrincipal(PortalUser):
    """A signed-in staff member (staff have no display name: `name` is their email)."""

    role: str = StaffRole.SUPPORT.value

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.ADMIN.value


def staff_user(staff: StaffUser) -> StaffPrincipal:
    return StaffPrincipal(
        STAFF,
        staff.id,
        staff.email,
        staff.email,
        staff.active,
        epoch=staff.session_epoch,
        time_zone=staff.time_zone,
        role=staff.role,
    )


def _load_staff(staff_id: int) -> PortalUser | None:
    staff = request_session().get(StaffUser, staff_id)
    if staff is None or not staff.active:
        return None
    return staff_user(staff)


def register() -> None:
    register_kind(STAFF, _load_staff, StaffUser)


def authenticate(session: Session, email: str, password: str) -> StaffUser | None:
    account: StaffUser | None = account_for_password(session, StaffUser, email, password)
    return account


def issue_token(staff: StaffUser) -> str:
    """A new token replaces the old one at once; the secret is returned once and only its hash is kept."""
    token = new_token(STAFF_TOKEN_KIND)
    staff.api_token_id, staff.api_token_hash = token.key_id, token.secret_hash
    return token.token


def revoke_token(staff: StaffUser) -> None:
    staff.api_token_id = staff.api_token_hash = None


def staff_for_token(session: Session, token: str) -> int | None:
    """The id of the active staff user owning `token`, or None."""
    return account_for_token(session, StaffUser, STAFF_TOKEN_KIND, token)


def is_staff_token(token: str | None) -> bool:
    return token is not None and token.startswith(f"{STAFF_TOKEN_KIND}_")


def current_api_staff_id() -> int:
    staff_id: int = g.api_staff_id
    return staff_id


def staff_alternative(
    staff_view: Callable[P, ResponseReturnValue],
) -> Callable[[Callable[P, ResponseReturnValue]], Callable[P, ResponseReturnValue]]:
    """On a publisher API route: a `stf_` bearer token is answered by `staff_view` (every publisher visible),
    any other token by the publisher view as before. A bad staff token is the same 401 as a bad publisher one.
    """

    def decorate(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            token = bearer_token()
            if not is_staff_token(token):
                return view(*args, **kwargs)
            assert token is not None
            staff_id = staff_for_token(request_session(), token)
            if staff_id is None:
                return view(*args, **kwargs)  # the publisher check refuses it with the usual 401
            g.api_staff_id = staff_id
            return staff_view(*args, **kwargs)

        return wrapped

    return decorate
