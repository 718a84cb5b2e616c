"""API keys, tokens and passwords: stored only as hashes; the secret is shown once, at creation.

A token looks like ``<kind>_<key id>_<secret>``. The key id is public and indexed, so a request's token finds
its row in one lookup; the secret part is checked against a salted SHA-256. A fast hash is right here because
the secret is 256 random bits, not something a person chose; passwords get werkzeug's slow scrypt instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

KEY_ID_BYTES = 6
SECRET_BYTES = 32
_HEX = frozenset(string.hexdigits.lower())
_URLSAFE = frozenset(string.ascii_letters + string.digits + "-_")


@dataclass(frozen=True)
class NewToken:
    token: str  # show once, never store
    key_id: str
    secret_hash: str


@dataclass(frozen=True)
class TokenParts:
    kind: str
    key_id: str
    secret: str


def new_token(kind: str) -> NewToken:
    if not kind.isalnum():
        raise ValueError(f"token kind must be alphanumeric, got {kind!r}")
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return NewToken(f"{kind}_{key_id}_{secret}", key_id, hash_secret(secret))


def split_token(token: str, kind: str) -> TokenParts | None:
    """The parts of a token of the given kind, or None when it is not shaped like one."""
    pieces = token.split("_", 2)
    if len(pieces) != 3 or pieces[0] != kind or len(pieces[1]) != 2 * KEY_ID_BYTES or not pieces[2]:
        return None
    # Only the characters we generate: anything else (a NUL, say) must never reach a database query.
    if not _HEX.issuperset(pieces[1]) or not _URLSAFE.issuperset(pieces[2]):
        return None
    return TokenParts(*pieces)


def hash_secret(secret: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
    return f"sha256${salt}${digest}"


def check_secret(stored: str | None, secret: str) -> bool:
    if not stored:
        return False
    try:
        algorithm, salt, digest = stored.split("$", 2)
    except ValueError:
        return False
    if algorithm != "sha256":
        return False
    candidate = hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def check_password(stored: str, password: str) -> bool:
    return check_password_hash(stored, password)
