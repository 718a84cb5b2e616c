"""Publisher authentication: the portal's password check, and the API's `Authorization: Bearer
pub_<key id>_<secret>`, one indexed lookup.

The key id finds the publisher row (unique index on `api_token_id`); the secret is checked against its salted
hash in constant time. Every failure answers the same 401: a caller learns nothing about which part was wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import g, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from dispatcher.accounts import PUBLISHER_TOKEN_KIND
from dispatcher.auth import account_for_password, account_for_token, bearer_token
from dispatcher.db import request_session
from dispatcher.models import Publisher

P = ParamSpec("P")
R = TypeVar("R")

UNAUTHORIZED = "Authorization: Bearer <publisher API token> is missing or not valid"


def authenticate(session: Session, email: str, password: str) -> Publisher | None:
    """The active publisher with this email and password, or None (the portal's sign-in)."""
    account: Publisher | None = account_for_password(session, Publisher, email, password)
    return account


def publisher_for_token(session: Session, token: str) -> int | None:
    """The id of the active publisher that owns `token`, or None."""
    return account_for_token(session, Publisher, PUBLISHER_TOKEN_KIND, token)


def current_publisher_id() -> int:
    """The publisher authenticated for this API request (set by `token_required`)."""
    publisher_id: int = g.api_publisher_id
    return publisher_id


def token_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        token = bearer_token()
        publisher_id = publisher_for_token(request_session(), token) if token else None
        if publisher_id is None:
            response = jsonify({"error": UNAUTHORIZED, "fields": {}})
            response.headers["WWW-Authenticate"] = 'Bearer realm="publisher API"'
            return response, 401
        g.api_publisher_id = publisher_id
        return view(*args, **kwargs)

    return wrapped
