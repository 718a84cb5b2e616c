"""Who is calling: advertisers by API key (Bearer header) or S2S token (query string); the token lookup
publishers and staff share.

A token is `<kind>_<key id>_<secret>`: one indexed lookup by key id, then a salted SHA-256 of the secret (see
`dispatcher.credentials`). Cheap on purpose: it runs on every reported sale. Failures are 401 with a JSON body
that says what was wrong with the credentials, never whose they might be.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from flask import abort, request
from sqlalchemy import FromClause, Select, Table, bindparam, select
from sqlalchemy.orm import Session

from dispatcher.accounts import ADVERTISER_KEY_KIND, S2S_TOKEN_KIND
from dispatcher.credentials import check_password, check_secret, dummy_hash, password_method_of, split_token
from dispatcher.db import Db, fetch
from dispatcher.models import Advertiser
from dispatcher.models.types import utcnow


def account_for_password(session: Session, model: Any, email: str, password: str) -> Any | None:
    """The active `model` row (Publisher, StaffUser) with this email and password, or None."""
    clean = email.strip().lower()
    # PostgreSQL refuses NUL in text: such an email cannot be anyone's, so it is not looked up.
    account = None if "\x00" in clean else session.scalar(select(model).where(model.email == clean))
    if account is None:
        # As long as a wrong password would take: no probing which emails have accounts.
        check_password(dummy_hash(password_method_of(session)), password)
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


@dataclass(frozen=True)
class Beside:
    """Rows to read in the same statement as a token's check (`keyed_select`), and that statement's other
    parameters: a reported sale's click, say, read with the advertiser's key in one round trip."""

    statement: Select[*tuple[Any, ...]]
    params: Mapping[str, Any]


def advertiser_by_token(db: Db, token: str, kind: str) -> AdvertiserIdentity | None:
    """The active advertiser whose API key (`adv`) or S2S token (`s2s`) this is, else None."""
    parts = split_token(token.strip(), kind)
    if parts is None:
        return None
    rows = fetch(db, _BY_TOKEN[kind], {"key_id": parts.key_id})
    return _identity(rows[0] if rows else None, parts.secret)


def advertiser_beside(
    db: Db, token: str, kind: str, beside: Beside
) -> tuple[AdvertiserIdentity | None, list[Any]]:
    """`advertiser_by_token`, and the rows `beside` reads, in one statement; no rows when the token fails."""
    parts = split_token(token.strip(), kind)
    if parts is None:
        return None, []
    rows = fetch(db, beside.statement, {**beside.params, "key_id": parts.key_id})
    identity = _identity(rows[0] if rows else None, parts.secret)
    return identity, rows if identity is not None else []


def keyed_select(kind: str, joined: Callable[[Table], FromClause], *columns: Any) -> Select[*tuple[Any, ...]]:
    """For `Beside`: `columns` beside the identity of the advertiser whose token of `kind` has the id
    `:key_id`, from what `joined` outer-joins to the advertisers table. An unknown key id gives no row; a
    known one at least one, with NULL in `columns` where the joins find nothing."""
    key_id, secret_hash = _TOKEN_COLUMNS[kind]
    return (
        select(*_KEYED_IDENTITY, secret_hash.label("key_secret_hash"), *columns)
        .select_from(joined(_advertisers))
        .where(key_id == bindparam("key_id"))
    )


def _identity(row: Any | None, secret: str) -> AdvertiserIdentity | None:
    if row is None or not row.key_active or not check_secret(row.key_secret_hash, secret):
        return None
    return AdvertiserIdentity(row.key_advertiser_id, row.key_advertiser_name)


_advertisers = cast(Table, Advertiser.__table__)
# Labelled apart from the columns read beside them (a program's advertiser_id, a click's id).
_KEYED_IDENTITY = (
    _advertisers.c.id.label("key_advertiser_id"),
    _advertisers.c.name.label("key_advertiser_name"),
    _advertisers.c.active.label("key_active"),
)
_TOKEN_COLUMNS = {
    ADVERTISER_KEY_KIND: (_advertisers.c.api_key_id, _advertisers.c.api_key_hash),
    S2S_TOKEN_KIND: (_advertisers.c.s2s_token_id, _advertisers.c.s2s_token_hash),
}
_PREVIOUS_COLUMNS = {
    ADVERTISER_KEY_KIND: (
        _advertisers.c.previous_api_key_id,
        _advertisers.c.previous_api_key_hash,
        _advertisers.c.previous_api_key_until,
    ),
    S2S_TOKEN_KIND: (
        _advertisers.c.previous_s2s_token_id,
        _advertisers.c.previous_s2s_token_hash,
        _advertisers.c.previous_s2s_token_until,
    ),
}
_BY_PREVIOUS = {
    kind: select(
        *_KEYED_IDENTITY,
        _TOKEN_COLUMNS[kind][0].label("current_key_id"),
        secret_hash.label("previous_hash"),
        until.label("previous_until"),
    ).where(key_id == bindparam("key_id"))
    for kind, (key_id, secret_hash, until) in _PREVIOUS_COLUMNS.items()
}
_BY_TOKEN = {
    kind: select(*_KEYED_IDENTITY, secret_hash.label("key_secret_hash")).where(key_id == bindparam("key_id"))
    for kind, (key_id, secret_hash) in _TOKEN_COLUMNS.items()
}


def bearer_token(authorization: str | None = None) -> str | None:
    """The token of a `Bearer <token>` Authorization header: this request's, or the given header value
    (the fast path, in front of Flask, has no request object)."""
    header = request.headers.get("Authorization", "") if authorization is None else authorization
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_advertiser_api_key(db: Db, authorization: str | None = None) -> AdvertiserIdentity:
    """The advertiser whose API key is in the Authorization header (this request's, or the value given),
    else a 401 (HTTPException) saying what is wrong with it."""
    identity, _ = require_advertiser_beside(db, bearer_token(authorization), ADVERTISER_KEY_KIND, None)
    return identity


def require_advertiser_s2s_token(db: Db, token: str | None) -> AdvertiserIdentity:
    identity, _ = require_advertiser_beside(db, token, S2S_TOKEN_KIND, None)
    return identity


def require_advertiser_beside(
    db: Db, token: str | None, kind: str, beside: Beside | None
) -> tuple[AdvertiserIdentity, list[Any]]:
    """`require_advertiser_api_key` (`token`: the Bearer token) or `require_advertiser_s2s_token`, and the
    rows `beside` reads (if given), in one statement."""
    missing, refused = _REFUSALS[kind]
    if not token:
        abort(401, description=missing)
    rows: list[Any] = []
    if beside is None:
        identity = advertiser_by_token(db, token, kind)
    else:
        identity, rows = advertiser_beside(db, token, kind, beside)
    if identity is None:
        identity, rows = _by_previous_secret(db, token, kind, beside)
    if identity is None:
        if _deactivated_advertiser(db, token, kind):
            abort(403, description=_DEACTIVATED[kind])
        abort(401, description=refused)
    return identity, rows


def _by_previous_secret(
    db: Db, token: str, kind: str, beside: Beside | None
) -> tuple[AdvertiserIdentity | None, list[Any]]:
    """The advertiser whose key or token, replaced by a rotation, this still is during its grace period
    (`dispatcher.account_admin`), and the rows `beside` reads. Tried only once the current one has failed,
    so the sale path reads nothing more; `beside` is keyed by the current key's id, which the row gives."""
    parts = split_token(token.strip(), kind)
    found = fetch(db, _BY_PREVIOUS[kind], {"key_id": parts.key_id}) if parts is not None else []
    if parts is None or not found:
        return None, []
    row = found[0]
    if row.previous_until is None or row.previous_until <= utcnow() or not row.key_active:
        return None, []
    if not check_secret(row.previous_hash, parts.secret):
        return None, []
    identity = AdvertiserIdentity(row.key_advertiser_id, row.key_advertiser_name)
    if beside is None:
        return identity, []
    return identity, fetch(db, beside.statement, {**beside.params, "key_id": row.current_key_id})


def _deactivated_advertiser(db: Db, token: str, kind: str) -> bool:
    """Whether `token` is the right secret of a deactivated advertiser. Read again only on a refusal, so the
    sale path is not slowed; the caller proved it holds the secret, so saying why is no leak."""
    parts = split_token(token.strip(), kind)
    if parts is None:
        return False
    rows = fetch(db, _BY_TOKEN[kind], {"key_id": parts.key_id})
    return bool(rows) and not rows[0].key_active and check_secret(rows[0].key_secret_hash, parts.secret)


_REFUSALS = {
    ADVERTISER_KEY_KIND: (
        "Authorization: expected 'Bearer <advertiser API key>'",
        "Authorization: the API key is not valid (unknown, or replaced and past its grace period)",
    ),
    S2S_TOKEN_KIND: (
        "token: the S2S token is required (?token=s2s_...)",
        "token: the S2S token is not valid (unknown, or replaced and past its grace period)",
    ),
}
_DEACTIVATED = {
    kind: f"{field}: the advertiser account is deactivated; ask the network to reactivate it"
    for kind, field in ((ADVERTISER_KEY_KIND, "Authorization"), (S2S_TOKEN_KIND, "token"))
}
