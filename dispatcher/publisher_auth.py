"""Publisher API authentication: `Authorization: Bearer pub_<key id>_<secret>`, one indexed lookup.

The key id finds the publisher row (unique index on `api_token_id`); the secret is checked against its salted
hash in constant time. Every failure answers the same 401: a caller learns nothing about which part was wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.accounts import PUBLISHER_TOKEN_KIND
from dispatcher.credentials import check_secret, split_token
from dispatcher.db import request_session
from dispatcher.models import Publisher

P = ParamSpec("P")
R = TypeVar("R")

HEX = frozenset("0123456789abcdef")
UNAUTHORIZED = "Authorization: Bearer <publisher API token> is missing or not valid"


def publisher_for_token(session: Session, token: str) -> int | None:
    """The id of the active publisher that owns `token`, or None."""
    parts = split_token(token, PUBLISHER_TOKEN_KIND)
    # Key ids are hex; anything else (a NUL, which PostgreSQL refuses in text) cannot match a row.
    if parts is None or not all(char in HEX for char in parts.key_id):
        return None
    row = session.execute(
        select(Publisher.id, Publisher.api_token_hash, Publisher.active).where(
            Publisher.api_token_id == parts.key_id
        )
    ).first()
    if row is None or not row.active or not check_secret(row.api_token_hash, parts.secret):
        return None
    return int(row.id)


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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
