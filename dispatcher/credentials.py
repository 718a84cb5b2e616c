"""API keys, tokens and passwords: stored only as hashes; the secret is shown once, at creation.

A token looks like ``<kind>_<key id>_<secret>``. The key id is public and indexed, so a request's token finds
its row in one lookup; the secret part is checked against a salted SHA-256. A fast hash is right here because
the secret is 256 random bits, not something a person chose; passwords get werkzeug's slow scrypt instead.

The password method is configuration (`PASSWORD_HASH_METHOD`, default scrypt) so that a test suite creating
thousands of accounts can choose a cheap one; it reaches `dispatcher.accounts` and the login check through
the database's sessions (`Session.info`), never through a process-wide setting. A stored hash names its own
method, so checking works whatever the setting was when it was made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

DEFAULT_PASSWORD_METHOD = "scrypt"
# The key under which a database's sessions carry the configured method (`Database`, `Session.info`).
PASSWORD_METHOD_INFO = "password_method"
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


def password_method_of(session: Session) -> str:
    """The password hashing method configured for the database this session belongs to."""
    method = session.info.get(PASSWORD_METHOD_INFO, DEFAULT_PASSWORD_METHOD)
    return str(method)


def is_password_method(method: str) -> bool:
    """Whether werkzeug can hash with `method` (e.g. scrypt, scrypt:32768:8:1, pbkdf2:sha256:600000)."""
    try:
        generate_password_hash("probe", method)
    except ValueError:
        return False
    return True


def hash_password(password: str, method: str = DEFAULT_PASSWORD_METHOD) -> str:
    return generate_password_hash(password, method)


@lru_cache(maxsize=8)
def dummy_hash(method: str) -> str:
    """A hash made with `method` that no password matches in practice: checked when an email is unknown, so
    that a wrong email costs as long as a wrong password (no account probing)."""
    return generate_password_hash(secrets.token_urlsafe(32), method)


def check_password(stored: str, password: str) -> bool:
    return check_password_hash(stored, password)
