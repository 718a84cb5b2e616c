"""Send test: fire a postback now with the sample transaction, the way a worker would send a delivery.

The request is built by `dispatcher.egress.render.build_request` (same encoding, headers, User-Agent and
signature), sent by `dispatcher.egress.client.EgressClient` (same SSRF guard on the resolved address,
timeouts, no redirects, capped read) and judged by `dispatcher.egress.verdict.judge`, all three the workers'
own: a destination the workers would refuse is refused here, and an answer they would count as a failure is
one here, with the same words. Nothing is recorded: there is no transaction behind a test, so it is not a
delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import macros
from dispatcher.config import IPNetwork
from dispatcher.egress import render
from dispatcher.egress.client import EgressClient
from dispatcher.egress.verdict import judge
from dispatcher.models import Postback
from dispatcher.models.types import utcnow
from dispatcher.portal.preview import sample_values

EXCERPT_CHARS = 2000
TEST_DELIVERY_ID = 0  # the sample's #deliveryid# and signature id; no real delivery has id 0


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
    postback: Postback, allowed_networks: tuple[IPNetwork, ...], now: datetime | None = None
) -> TestResult:
    claimed = render.Claimed(
        delivery_id=TEST_DELIVERY_ID,
        number=1,
        attempt_in_schedule=1,
        postback_id=postback.id,
        sendable=True,
        paused_reason=None,
        success_body_contains=postback.success_body_contains,
        values={**sample_values(postback.status_map), "deliveryid": TEST_DELIVERY_ID},
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
