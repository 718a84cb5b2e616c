"""Small stand-ins for publishers' trackers: each parses a postback the way its tracker documents it.

What each one models (the parameters and rules of /work/shared/DOMAIN.md, from the trackers' own docs):

- Voluum `GET /postback?cid=&payout=&txid=`: `cid` is required. A repeated cid counts once unless its txid
  is new (a new txid is another conversion, an upsell); the same cid and txid again updates its payout.
- ClickFlare `GET /cf/cv?click_id=&payout=&txid=&ct=`: `click_id` is required, `ct` is sale, lead, upsell or
  refund; a refund with the txid of a conversion refunds it (its revenue goes to 0).
- FunnelFlux `GET /postback?hit=&tx=&rev=&status=&conversion_time=`: `hit` is required; status pending, hold
  or preapproved counts revenue 0.01; rejected, reject, trash or cancelled deletes the conversion; any other
  status counts `rev`. `conversion_time` is a unix timestamp.
- Keitaro `GET /<key>/postback?subid=&tid=&payout=&status=`: `subid` is required, status lead, sale, rejected
  or rebill; the same subid and tid again changes that conversion's status and payout; rebill adds one.

Anything a tracker would not understand (a missing click id, a word it does not know, an amount that is not
a number) is answered 400 and kept in `refused`, so a test sees exactly what a publisher's tracker would drop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.serving import serve_in_thread

KEITARO_KEY = "YOUR-POSTBACK-KEY"  # as in the README recipe


class Rejected(Exception):
    """The tracker would not record this postback; the message is what it would say."""


@dataclass
class Conversion:
    click: str
    txid: str
    payout: Decimal
    status: str
    time: int | None = None


def _money(query: dict[str, str], name: str) -> Decimal:
    raw = query.get(name, "0") or "0"
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise Rejected(f"{name} is not a number: {raw!r}") from None


def _required(query: dict[str, str], name: str) -> str:
    value = query.get(name, "")
    if not value:
        raise Rejected(f"{name} is required")
    return value


class Tracker:
    """Conversions keyed by (click id, transaction id), as the tracker would show them in its reports."""

    def __init__(self) -> None:
        self.conversions: dict[tuple[str, str], Conversion] = {}

    def receive(self, query: dict[str, str]) -> None:
        raise NotImplementedError

    def of(self, click: str) -> list[Conversion]:
        return [conversion for (owner, _), conversion in self.conversions.items() if owner == click]


class Voluum(Tracker):
    def receive(self, query: dict[str, str]) -> None:
        cid = _required(query, "cid")
        payout, txid = _money(query, "payout"), query.get("txid", "")
        if (cid, txid) in self.conversions:
            self.conversions[cid, txid].payout = payout
        elif not txid and self.of(cid):
            return  # a repeated cid without a new txid counts once
        else:
            self.conversions[cid, txid] = Conversion(cid, txid, payout, "converted")


class ClickFlare(Tracker):
    TYPES = ("sale", "lead", "upsell", "refund")

    def receive(self, query: dict[str, str]) -> None:
        click, txid = _required(query, "click_id"), query.get("txid", "")
        kind = query.get("ct", "sale") or "sale"
        if kind not in self.TYPES:
            raise Rejected(f"ct must be one of {', '.join(self.TYPES)}, got {kind!r}")
        payout = _money(query, "payout")
        known = self.conversions.get((click, txid))
        if kind == "refund":
            if known is None:
                raise Rejected(f"refund of an unknown conversion {click}/{txid}")
            known.status, known.payout = "refund", Decimal("0")
        elif known is None or kind == "upsell":
            self.conversions[click, txid] = Conversion(click, txid, payout, kind)
        else:
            known.payout, known.status = payout, kind


class FunnelFlux(Tracker):
    PROVISIONAL = ("pending", "hold", "preapproved")
    DELETING = ("rejected", "reject", "trash", "cancelled")

    def receive(self, query: dict[str, str]) -> None:
        hit, tx = _required(query, "hit"), query.get("tx", "")
        status = query.get("status", "") or "approved"
        raw_time = query.get("conversion_time", "")
        if raw_time and not raw_time.isdigit():
            raise Rejected(f"conversion_time must be a unix timestamp, got {raw_time!r}")
        if status in self.DELETING:
            self.conversions.pop((hit, tx), None)
            return
        revenue = Decimal("0.01") if status in self.PROVISIONAL else _money(query, "rev")
        moment = int(raw_time) if raw_time else None
        self.conversions[hit, tx] = Conversion(hit, tx, revenue, status, moment)


class Keitaro(Tracker):
    STATUSES = ("lead", "sale", "rejected", "rebill")

    def receive(self, query: dict[str, str]) -> None:
        subid, tid = _required(query, "subid"), query.get("tid", "")
        status = query.get("status", "") or "lead"
        if status not in self.STATUSES:
            raise Rejected(f"status must be one of {', '.join(self.STATUSES)}, got {status!r}")
        payout = _money(query, "payout")
        if status == "rebill":
            tid = f"{tid}/rebill-{len(self.of(subid))}"
            status = "sale"
        self.conversions[subid, tid] = Conversion(subid, tid, payout, status)


@dataclass
class Hit:
    path: str
    status: int
    answer: str


class Trackers:
    """The four trackers behind one threaded HTTP server on 127.0.0.1, each under its own path."""

    def __init__(self) -> None:
        self.voluum, self.clickflare = Voluum(), ClickFlare()
        self.funnelflux, self.keitaro = FunnelFlux(), Keitaro()
        self.routes: dict[str, Tracker] = {
            "/voluum/postback": self.voluum,
            "/clickflare/cf/cv": self.clickflare,
            "/funnelflux/postback": self.funnelflux,
            f"/keitaro/{KEITARO_KEY}/postback": self.keitaro,
        }
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        serve_in_thread(self.server)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def refused(self) -> list[Hit]:
        with self.lock:
            return [hit for hit in self.hits if hit.status != 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, path: str, query: dict[str, str]) -> tuple[int, str]:
        tracker = self.routes.get(path)
        if tracker is None:
            return 404, "unknown postback URL"
        with self.lock:  # one conversion table per tracker: updates are serialized as a tracker would
            try:
                tracker.receive(query)
            except Rejected as exc:
                return 400, str(exc)
        return 200, "OK"

    def _handler(self) -> Callable[..., BaseHTTPRequestHandler]:
        trackers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                query.update(parse_qsl(body, keep_blank_values=True))
                status, answer = trackers._answer(parts.path, query)
                with trackers.lock:
                    trackers.hits.append(Hit(self.path, status, answer))
                data = answer.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler
