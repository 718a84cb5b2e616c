"""From a postback and its macro values to the request to send: URL, body and headers expanded, signed.

The URL's host is read by `urls` (as saving read it) and headers are made sendable by `fields`, so what is
built here is what goes on the wire, and what the attempt log shows; a request that cannot be built raises
MacroError or ValueError, a permanent `template` failure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import macros
from dispatcher.egress import fields, signing, urls
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
    recorded_at: datetime | None = None  # when its sale or status change was recorded (metrics only)


def build_request(job: Claimed, now: datetime, user_agent: str) -> OutboundRequest:
    """Expand the postback for this attempt; MacroError or ValueError (urls.BadURL, fields.BadHeader: a
    permanent failure) when it cannot be sent."""
    postback = job.postback
    values = {**job.values, "attempt": job.number, "ts": now}
    url = urls.sendable(template(postback.url_template, macros.Context.URL).expand(values))
    headers = {"User-Agent": user_agent, "Accept-Encoding": "identity"}
    for name, value in (postback.headers or {}).items():
        if not fields.is_token(name):  # saving refuses it; a row from before that rule fails here, for good
            raise fields.BadHeader(f"the header name {name!r} is not an HTTP token")
        # Saving refused typed text a header cannot carry; what a macro brought is percent-encoded (with its
        # "%", macros.encoding.header); `fields.encode` catches what a :raw macro brought.
        headers[name] = fields.encode(template(value, macros.Context.HEADER).expand(values))
    body: bytes | None = None
    if postback.method == "POST":
        content_type = postback.content_type or FORM_TYPE
        context = macros.Context.JSON if "json" in content_type.lower() else macros.Context.FORM
        body = template(postback.body_template or "", context).expand(values).encode()
        headers["Content-Type"] = content_type
    if postback.signing_secret:
        if body is None:
            url = urls.as_sent(url)  # a GET signs its URL: the one the client will put on the wire
        signed = signing.content(url, body)
        headers.update(
            signing.headers(postback.signing_secret, f"dlv_{job.delivery_id}", int(now.timestamp()), signed)
        )
    return OutboundRequest(postback.method, url, headers, body)


@functools.lru_cache(maxsize=4096)
def template(source: str, context: macros.Context) -> macros.Template:
    # Parsed templates are immutable and shared by every thread; parsing is the expensive part.
    return macros.parse(source, context)
