"""Who is calling: advertisers by API key (Bearer header) or S2S token (query string); the token lookup
publishers and staff share.

A token is `<kind>_<key id>_<secret>`: one indexed lookup by key id, then a salted SHA-256 of the secret (see
`dispatcher.credentials`). Cheap on purpose: it runs on every reported sale. Failures are 401 with a JSON body
that says what was wrong with the credentials, never whose they might be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from flask import abort, request
from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from dispatcher.accounts import ADVERTISER_KEY_KIND, S2S_TOKEN_KIND
from dispatcher.credentials import check_password, check_secret, split_token
from dispatcher.db import Link, fetch
from dispatcher.models import Advertiser

# Checked when the email is unknown, so a wrong email costs as long as a wrong password (no account probing).
_DUMMY_HASH = "scrypt:32768:8:1$dummysaltdummys$" + "0" * 128


def account_for_password(session: Session, model: Any, email: str, password: str) -> Any | None:
    """The active `model` row (Publisher, StaffUser) with this email and password, or None."""
    clean = email.strip().lower()
    # PostgreSQL refuses NUL in text: such an email cannot be anyone's, so it is not looked up.
    account = None if "\x00" in clean else session.scalar(select(model).where(model.email == clean))
    if account is None:
        check_password(_DUMMY_HASH, password)
        return None
    if not check_password(account.password_hash, password) or not account.active:
        return None
    return account


def account_for_token(session: Session, model: Any, kind: str, token: str) -> int | None:
    """The id of the active `model` row (Publisher, StaffUser) owning an `<kind>_...` token, or None."""
    parts = split_token(token, kind)
    if parts is None:
        return None
    row = session.execute(
        select(model.id, model.api_token_hash, model.active).where(model.api_token_id == parts.key_id)
    ).first()
    if row is None or not row.active or not check_secret(row.api_token_hash, parts.secret):
        return None
    return int(row.id)


@dataclass(frozen=True)
class AdvertiserIdentity:
    id: int
    name: str


def advertiser_by_token(db: Session | Link, token: str, kind: str) -> AdvertiserIdentity | None:
    """The active advertiser whose API key (`adv`) or S2S token (`s2s`) this is, else None."""
    parts = split_token(token.strip(), kind)
    if parts is None:
        return None
    statement = _BY_API_KEY if kind == ADVERTISER_KEY_KIND else _BY_S2S_TOKEN
    rows = fetch(db, statement, {"key_id": parts.key_id})
    row = rows[0] if rows else None
    if row is None or not row.active or not check_secret(row.secret_hash, parts.secret):
        return None
    return AdvertiserIdentity(row.id, row.name)


_advertisers = cast(Table, Advertiser.__table__)
_IDENTITY = (_advertisers.c.id, _advertisers.c.name, _advertisers.c.active)
_BY_API_KEY = select(*_IDENTITY, _advertisers.c.api_key_hash.label("secret_hash")).where(
    _advertisers.c.api_key_id == bindparam("key_id")
)
_BY_S2S_TOKEN = select(*_IDENTITY, _advertisers.c.s2s_token_hash.label("secret_hash")).where(
    _advertisers.c.s2s_token_id == bindparam("key_id")
)


def bearer_token(authorization: str | None = None) -> str | None:
    """The token of a `Bearer <token>` Authorization header: this request's, or the given header value
    (the fast path, in front of Flask, has no request object)."""
    header = request.headers.get("Authorization", "") if authorization is None else authorization
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_advertiser_api_key(db: Session | Link, authorization: str | None = None) -> AdvertiserIdentity:
    """The advertiser whose API key is in the Authorization header (this request's, or the value given),
    else a 401 (HTTPException) saying what is wrong with it."""
    token = bearer_token(authorization)
    if token is None:
        abort(401, description="Authorization: expected 'Bearer <advertiser API key>'")
    identity = advertiser_by_token(db, token, ADVERTISER_KEY_KIND)
    if identity is None:
        abort(401, description="Authorization: the API key is not valid (or its advertiser is inactive)")
    return identity


def require_advertiser_s2s_token(db: Session | Link, token: str | None) -> AdvertiserIdentity:
    if not token:
        abort(401, description="token: the S2S token is required (?token=s2s_...)")
    identity = advertiser_by_token(db, token, S2S_TOKEN_KIND)
    if identity is None:
        abort(401, description="token: the S2S token is not valid (or its advertiser is inactive)")
    return identity
