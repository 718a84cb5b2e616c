"""Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over `id.timestamp.content`.

The content is what carries the values: the body of a POST, as the standard says; a GET has no body and its
values are in its query, so a GET signs its URL as the receiver gets it (`content`). A secret written as
`whsec_<base64>` is the standard form and its decoded bytes are the key; any other secret is used as its UTF-8
bytes. The message id is the same on every retry of a delivery, so receivers can de-duplicate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from dispatcher.egress import urls

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except binascii.Error:
            pass  # not base64 after all: fall back to the text itself
    return secret.encode()


def content(url: str, body: bytes | None) -> bytes:
    """What is signed after `id.timestamp.`: the body when there is one, else the URL as received (the
    scheme, `://`, the Host header and the request target). `url` must be the URL exactly as sent
    (`urls.as_sent`)."""
    return body if body is not None else urls.as_received(url).encode()


def sign(secret: str, message_id: str, timestamp: int, signed: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 HMAC-SHA256>`."""
    message = f"{message_id}.{timestamp}.".encode() + signed
    digest = hmac.new(secret_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, signed: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, signed),
    }
