"""From a postback and its macro values to the request to send: URL, body and headers expanded, signed."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import macros
from dispatcher.egress import signing
from dispatcher.egress.client import OutboundRequest
from dispatcher.models import Postback

FORM_TYPE = "application/x-www-form-urlencoded"
USER_AGENT = "PostbackDispatcher/0.1 (+https://github.com/postback-dispatcher)"


@dataclass(frozen=True)
class Claimed:
    """One claimed delivery with everything needed to send it and judge the answer."""

    delivery_id: int
    number: int
    attempt_in_schedule: int
    postback_id: int
    sendable: bool  # False: the postback was paused, deactivated or deleted meanwhile
    paused_reason: str | None
    success_body_contains: str | None
    values: dict[str, object]
    postback: Postback


def build_request(job: Claimed, now: datetime, user_agent: str) -> OutboundRequest:
    """Expand the postback for this attempt; MacroError (a permanent failure) when a template is broken."""
    postback = job.postback
    values = {**job.values, "attempt": job.number, "ts": now}
    url = template(postback.url_template, macros.Context.URL).expand(values)
    headers = {"User-Agent": user_agent, "Accept-Encoding": "identity"}
    for name, value in (postback.headers or {}).items():
        headers[name] = template(value, macros.Context.TEXT).expand(values)
    body: bytes | None = None
    if postback.method == "POST":
        content_type = postback.content_type or FORM_TYPE
        context = macros.Context.JSON if "json" in content_type.lower() else macros.Context.FORM
        body = template(postback.body_template or "", context).expand(values).encode()
        headers["Content-Type"] = content_type
    if postback.signing_secret:
        headers.update(
            signing.headers(
                postback.signing_secret, f"dlv_{job.delivery_id}", int(now.timestamp()), body or b""
            )
        )
    return OutboundRequest(postback.method, url, headers, body)


@functools.lru_cache(maxsize=4096)
def template(source: str, context: macros.Context) -> macros.Template:
    # Parsed templates are immutable and shared by every thread; parsing is the expensive part.
    return macros.parse(source, context)
