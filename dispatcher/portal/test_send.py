"""Send test: fire a postback now with the sample transaction, the way a worker would send a delivery.

The request is built by `dispatcher.egress.render.build_request` (same encoding, headers, User-Agent and
signature), sent by `dispatcher.egress.client.EgressClient` (same SSRF guard on the resolved address,
timeouts, no redirects, capped read) and judged by `dispatcher.egress.verdict.judge`, all three the workers'
own: a destination the workers would refuse is refused here, and an answer they would count as a failure is
one here, with the same words. Nothing is recorded: there is no transaction behind a test, so it is not a
delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import macros
from dispatcher.config import IPNetwork
from dispatcher.egress import render
from dispatcher.egress.client import EgressClient
from dispatcher.egress.verdict import judge
from dispatcher.ledger import fields
from dispatcher.models import Postback
from dispatcher.models.ledger import SUB_ID_LENGTH, EventType, TransactionStatus
from dispatcher.models.postbacks import POSTBACK_EVENTS
from dispatcher.models.types import utcnow
from dispatcher.portal.preview import sample_values
from dispatcher.validation import FieldError

EXCERPT_CHARS = 2000
TEST_DELIVERY_ID = 0  # the sample's #deliveryid# and signature id; no real delivery has id 0
# What a publisher may set for a test instead of the sample's values, and the macro each one fills.
VALUE_FIELDS = {
    "click_id": "fobs",
    "order_number": "on",
    "amount": "sa",
    "commission": "ca",
    "event": "event",
    "status": "status",
}
# What a real delivery's #event# can be: what fired it (the first report's type, or the later change).
EVENTS = POSTBACK_EVENTS
STATUSES = tuple(status.value for status in TransactionStatus)


def values_given(given: Mapping[str, object]) -> dict[str, object]:
    """The values a publisher gave for a test (blank ones left to the sample), as macro values; a bad one
    raises `FieldError` naming it, in the words a real report of that value would get."""
    unknown = sorted(set(given) - set(VALUE_FIELDS) - {"csrf_token"})
    if unknown:
        raise FieldError(
            unknown[0], given[unknown[0]], f"is not a test value; known: {', '.join(VALUE_FIELDS)}"
        )
    values: dict[str, object] = {}
    click = fields.optional_text("click_id", given.get("click_id"), max_length=SUB_ID_LENGTH)
    if click is not None:
        values["fobs"] = click
    order = fields.optional_text("order_number", given.get("order_number"), max_length=255)
    if order is not None:
        values["on"] = order
    for name in ("amount", "commission"):
        if not fields.is_blank(given.get(name)):
            number = fields.amount(name, given.get(name))
            values[VALUE_FIELDS[name]] = fields.in_currency(name, number, "USD", given.get(name))
    if not fields.is_blank(given.get("event")):
        values["event"] = fields.choice("event", given.get("event"), EVENTS, EventType.SALE.value)
    if not fields.is_blank(given.get("status")):
        values["status"] = fields.choice(
            "status", given.get("status"), STATUSES, TransactionStatus.APPROVED.value
        )
    return values


@dataclass(frozen=True)
class TestResult:
    method: str
    url: str
    body: str | None
    ok: bool
    status_code: int | None = None
    reason: str = ""
    duration_ms: int = 0
    resolved_ip: str | None = None
    excerpt: str | None = None
    error_class: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "request": {"method": self.method, "url": self.url, "body": self.body},
            "status_code": self.status_code,
            "reason": self.reason,
            "duration_ms": self.duration_ms,
            "resolved_ip": self.resolved_ip,
            "response_excerpt": self.excerpt,
            "error_class": self.error_class,
            "error": self.error,
        }


def send_test(
    postback: Postback,
    allowed_networks: tuple[IPNetwork, ...],
    now: datetime | None = None,
    given: Mapping[str, object] | None = None,
) -> TestResult:
    """`given`: values from `test_values` in place of the sample's (a status in our word: the postback's
    status words apply to it as to a real delivery)."""
    values = {**sample_values(postback.status_map, given), "deliveryid": TEST_DELIVERY_ID}
    claimed = render.Claimed(
        delivery_id=TEST_DELIVERY_ID,
        number=1,
        attempt_in_schedule=1,
        postback_id=postback.id,
        sendable=True,
        paused_reason=None,
        success_body_contains=postback.success_body_contains,
        values=values,
        postback=postback,
    )
    try:
        request = render.build_request(claimed, now or utcnow(), render.USER_AGENT)
    except (macros.MacroError, ValueError) as exc:
        # As the workers count it: a permanent `template` failure (a URL or header that cannot be sent).
        return TestResult(
            postback.method, postback.url_template, None, False, error_class="template", error=str(exc)
        )
    body = request.body.decode("utf-8", "replace") if request.body is not None else None
    client = EgressClient(allowed_networks)
    try:
        exchange = client.send(request)
    finally:
        client.close()
    excerpt = exchange.excerpt[:EXCERPT_CHARS] if exchange.excerpt is not None else None
    # The engine's own verdict, so a test and a real delivery judge the same answer in the same words.
    verdict = judge(exchange, postback.success_body_contains)
    return TestResult(
        method=request.method,
        url=request.url,
        body=body,
        ok=verdict is None,
        status_code=exchange.status_code,
        reason=exchange.reason,
        duration_ms=exchange.duration_ms,
        resolved_ip=exchange.resolved_ip,
        excerpt=excerpt,
        error_class=str(verdict.error_class) if verdict else None,
        error=verdict.message if verdict else None,
    )
