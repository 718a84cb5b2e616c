"""A publisher's personal API token: shown once when made, stored as a key id and a salted hash, revocable."""

from __future__ import annotations

from dispatcher.accounts import PUBLISHER_TOKEN_KIND
from dispatcher.credentials import new_token
from dispatcher.models import Publisher


def issue_token(publisher: Publisher) -> str:
    """A new token, replacing (and so revoking) the previous one. The caller shows it once and commits."""
    token = new_token(PUBLISHER_TOKEN_KIND)
    publisher.api_token_id, publisher.api_token_hash = token.key_id, token.secret_hash
    return token.token


def revoke_token(publisher: Publisher) -> None:
    publisher.api_token_id = None
    publisher.api_token_hash = None


def token_hint(publisher: Publisher) -> str | None:
    """Enough to recognise the token in a script (its public key id), never the secret."""
    if not publisher.api_token_id:
        return None
    return f"{PUBLISHER_TOKEN_KIND}_{publisher.api_token_id}_…"
