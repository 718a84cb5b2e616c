"""A bare implementation of a click and a reported sale: the baseline `bench.intake` holds the app to.

    gunicorn --workers 2 'bench._bare:app'      (DATABASE_URL: PostgreSQL; REDIS_URL)

A plain WSGI callable, no framework, served by gunicorn under the same settings as the app. Each process
opens one psycopg connection when its first request comes (so after gunicorn's fork) and keeps it. It sends
the statements our app sends, copied from its SQL log on PostgreSQL (the server's `log_statement = all`:
SQLAlchemy's echo does not show them: the hot paths run on the driver, dispatcher.driver_sql), written as
psycopg receives them, with named placeholders where the log shows $1, $2...
(`tests/bench/test_bare.py` holds both sides to the same statements):

- `GET /c/<program>?pub=&ts=&fobs=..`: the click's INSERT ... SELECT ... RETURNING (the program, advertiser,
  publisher and traffic source checked in the statement), the commit, a 302 to the landing URL with
  `clickid` added; 404 when no row was inserted.
- `POST /api/v1/transactions` (`Authorization: Bearer adv_<key id>_<secret>`, JSON body with `click_id`,
  `order_number`, `sale_amount`): in one transaction the SELECT reading the key, the click, its program and
  the publisher's live postbacks with their scopes, then the INSERTs of the transaction, its event and one
  delivery per matching postback (RETURNING each id), one commit; then one RPUSH of a job (the delivery ids,
  JSON) to a Redis list, and a 201 with the app's JSON body.

It parses the Authorization header and the JSON body (amounts as Decimal) and checks the key's salted
SHA-256 in Python, as the app does (the SQL only reads the hash). What it leaves out, all of which the app
does: the other fields of a report (currency, event, status, event_time, commission, clickless sales) and
their checks beyond "present and well-formed"; currencies without 2 decimals; duplicates (a repeated order
is a 409, the original not looked up); error bodies naming the field; the app's security headers and the
redirect's HTML page; the connection pool and its ping before each use; RQ's job format (no worker reads the
list) and the hand-over thread (the push is made in the request); SQLite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, quote

import psycopg
import redis
from psycopg.rows import namedtuple_row

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

QUEUE = "bench:bare:deliveries"
SALES_PATH = "/api/v1/transactions"
MAX_BODY = 64 * 1024
CENT = Decimal("0.01")
SUB_ID_LENGTH = 255
_CLICK_PATH = re.compile(r"/c/([1-9][0-9]{0,18})")
_SUB_IDS = ("fobs", "fobs2", "fobs3", "fobs4", "fobs5")

# --- the app's statements, as its SQL log shows them ($n renamed to %(name)s) ---

RECORD_CLICK = (
    "INSERT INTO clicks (program_id, publisher_id, traffic_source_id, click_id, fobs, fobs2, fobs3, fobs4, "
    "fobs5, ip, user_agent, created_at) SELECT programs.id, publishers.id AS id_1, "
    "traffic_sources.id AS id_2, "
    "%(click_id)s::VARCHAR AS anon_1, %(fobs)s::VARCHAR AS anon_2, %(fobs2)s::VARCHAR AS anon_3, "
    "%(fobs3)s::VARCHAR AS anon_4, %(fobs4)s::VARCHAR AS anon_5, %(fobs5)s::VARCHAR AS anon_6, "
    "%(ip)s::VARCHAR AS anon_7, %(user_agent)s::VARCHAR AS anon_8, "
    "%(created_at)s::TIMESTAMP WITH TIME ZONE AS anon_9 \n"
    "FROM programs JOIN advertisers ON advertisers.id = programs.advertiser_id "
    "JOIN publishers ON publishers.id = %(publisher_id)s::BIGINT "
    "JOIN traffic_sources ON traffic_sources.id = %(traffic_source_id)s::BIGINT "
    "AND traffic_sources.publisher_id = publishers.id \n"
    "WHERE programs.id = %(program_id)s::BIGINT AND programs.active IS true AND advertisers.active IS true "
    "AND publishers.active IS true AND traffic_sources.active IS true "
    "RETURNING (SELECT landing.landing_url FROM programs AS landing "
    "WHERE landing.id = clicks.program_id) AS landing_url"
)
KEY_CLICK_AND_POSTBACKS = (
    "SELECT advertisers.id AS key_advertiser_id, advertisers.name AS key_advertiser_name, "
    "advertisers.active AS key_active, advertisers.api_key_hash AS key_secret_hash, clicks.click_id, "
    "clicks.id, clicks.created_at, clicks.publisher_id, clicks.traffic_source_id, programs.id AS program_id, "
    "programs.advertiser_id, programs.active, programs.currency, programs.commission_type, "
    "programs.commission_value, programs.allow_clickless, programs.allow_advertiser_commission, "
    "postbacks.id AS postback_id, postbacks.publisher_id AS postback_publisher_id, postbacks.events, "
    "postbacks.statuses, postback_traffic_sources.traffic_source_id AS scope_source_id, "
    "postback_programs.program_id AS scope_program_id \n"
    "FROM advertisers LEFT OUTER JOIN clicks ON clicks.click_id = %(click_id)s::VARCHAR "
    "LEFT OUTER JOIN programs ON programs.id = clicks.program_id "
    "LEFT OUTER JOIN postbacks ON postbacks.publisher_id = clicks.publisher_id AND postbacks.active IS true "
    "AND postbacks.deleted_at IS NULL "
    "LEFT OUTER JOIN postback_traffic_sources ON postback_traffic_sources.postback_id = postbacks.id "
    "LEFT OUTER JOIN postback_programs ON postback_programs.postback_id = postbacks.id \n"
    "WHERE advertisers.api_key_id = %(key_id)s::VARCHAR ORDER BY postback_id"
)
INSERT_TRANSACTION = (
    "INSERT INTO transactions (sales_id, program_id, click_pk, publisher_id, traffic_source_id, "
    "order_number, sale_amount, commission, currency, event_type, status, channel, event_time, created_at, "
    "updated_at) "
    "VALUES (%(sales_id)s::VARCHAR, %(program_id)s::BIGINT, %(click_pk)s::BIGINT, %(publisher_id)s::BIGINT, "
    "%(traffic_source_id)s::BIGINT, %(order_number)s::VARCHAR, %(sale_amount)s, %(commission)s, "
    "%(currency)s::VARCHAR, %(event_type)s::VARCHAR, %(status)s::VARCHAR, %(channel)s::VARCHAR, "
    "%(event_time)s::TIMESTAMP WITH TIME ZONE, %(created_at)s::TIMESTAMP WITH TIME ZONE, "
    "%(updated_at)s::TIMESTAMP WITH TIME ZONE) RETURNING transactions.id"
)
INSERT_EVENT = (
    "INSERT INTO transaction_events (transaction_id, kind, status, sale_amount, commission, channel, "
    "occurred_at, created_at) VALUES (%(transaction_id)s::BIGINT, %(kind)s::VARCHAR, %(status)s::VARCHAR, "
    "%(sale_amount)s, %(commission)s, %(channel)s::VARCHAR, %(occurred_at)s::TIMESTAMP WITH TIME ZONE, "
    "%(created_at)s::TIMESTAMP WITH TIME ZONE) RETURNING transaction_events.id"
)
INSERT_DELIVERY = (
    "INSERT INTO deliveries (postback_id, transaction_event_id, transaction_id, publisher_id, state, "
    "attempt_count, next_attempt_at, queued_at, replayed_after_attempts, created_at, updated_at) "
    "VALUES (%(postback_id)s::BIGINT, %(transaction_event_id)s::BIGINT, %(transaction_id)s::BIGINT, "
    "%(publisher_id)s::BIGINT, %(state)s::VARCHAR, %(attempt_count)s::INTEGER, "
    "%(next_attempt_at)s::TIMESTAMP WITH TIME ZONE, %(queued_at)s::TIMESTAMP WITH TIME ZONE, "
    "%(replayed_after_attempts)s::INTEGER, %(created_at)s::TIMESTAMP WITH TIME ZONE, "
    "%(updated_at)s::TIMESTAMP WITH TIME ZONE) RETURNING deliveries.id"
)


class Refused(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class BareApp:
    """The WSGI callable (`app` below is the one gunicorn serves, configured from its environment)."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.connections = Connections(database_url, redis_url)

    def close(self) -> None:
        """Close this process's connections (a bench or test done with the app)."""
        self.connections.close()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
        try:
            if method == "POST" and path == SALES_PATH:
                answer = json.dumps(record_sale(self.connections, environ), separators=(",", ":")) + "\n"
                return _send(start_response, "201 Created", "application/json", answer.encode())
            match = _CLICK_PATH.fullmatch(path)
            if method == "GET" and match:
                location = record_click(self.connections, int(match[1]), environ)
                return _send(start_response, "302 Found", "text/plain", b"", (("Location", location),))
            raise Refused("404 Not Found", "no such route")
        except Refused as refusal:
            body = json.dumps({"error": str(refusal)}).encode()
            return _send(start_response, refusal.status, "application/json", body)


def record_click(connections: Connections, program_id: int, environ: Environ) -> str:
    """Record the click; the landing URL with the click id."""
    args: dict[str, str] = {}
    # WSGI hands the query string over as latin-1; a URL's bytes are UTF-8.
    query = environ.get("QUERY_STRING", "").encode("latin-1").decode("utf-8", "replace")
    for name, value in parse_qsl(query, keep_blank_values=True):
        args.setdefault(name, value)
    click_id = secrets.token_urlsafe(16)
    params = {
        "click_id": click_id,
        **{name: _sub_id(name, args.get(name)) for name in _SUB_IDS},
        "ip": environ.get("REMOTE_ADDR"),
        "user_agent": (environ.get("HTTP_USER_AGENT") or "")[:512] or None,
        "created_at": datetime.now(UTC),
        "publisher_id": _whole_number("pub", args.get("pub")),
        "traffic_source_id": _whole_number("ts", args.get("ts")),
        "program_id": program_id,
    }
    with connections.transaction() as cursor:
        cursor.execute(RECORD_CLICK, params)
        row = cursor.fetchone()
    if row is None:
        raise Refused("404 Not Found", f"no active program {program_id} for this publisher and source")
    landing: str = row.landing_url
    return f"{landing}{'&' if '?' in landing else '?'}clickid={quote(click_id, safe='')}"


@dataclass(frozen=True)
class Sale:
    order_number: str
    amount: Decimal
    commission: Decimal
    currency: str
    click_pk: int
    publisher_id: int
    source_id: int | None
    program_id: int
    sales_id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def record_sale(connections: Connections, environ: Environ) -> dict[str, Any]:
    """Record the reported sale and hand its deliveries to Redis; the answer's body."""
    key_id, secret = _api_key(environ.get("HTTP_AUTHORIZATION", ""))
    click_id, order_number, amount = _report(_body(environ))
    with connections.transaction() as cursor:
        cursor.execute(KEY_CLICK_AND_POSTBACKS, {"click_id": click_id, "key_id": key_id})
        rows = cursor.fetchall()
        sale = _sale(rows, secret, order_number, amount)
        deliveries = _insert(cursor, sale, _matching_postbacks(rows, sale.source_id, sale.program_id))
    if deliveries:
        connections.redis().rpush(QUEUE, json.dumps(deliveries))
    return {
        "commission": str(sale.commission),
        "currency": sale.currency,
        "deliveries": len(deliveries),
        "sales_id": sale.sales_id,
        "status": "pending",
    }


def _sale(rows: Sequence[Any], secret: str, order_number: str, amount: Decimal) -> Sale:
    """The sale, from the rows of KEY_CLICK_AND_POSTBACKS, once the key and the click check out."""
    if not rows or not rows[0].key_active or not _secret_matches(rows[0].key_secret_hash, secret):
        raise Refused("401 Unauthorized", "the API key is not valid")
    row = rows[0]
    if row.program_id is None or row.advertiser_id != row.key_advertiser_id:
        raise Refused("400 Bad Request", "click_id is not a click of this advertiser")
    value = row.commission_value
    commission = amount * value / 100 if row.commission_type == "percent" else value
    return Sale(
        order_number,
        amount,
        commission.quantize(CENT, ROUND_HALF_UP),
        row.currency,
        row.id,
        row.publisher_id,
        row.traffic_source_id,
        row.program_id,
    )


def _insert(cursor: psycopg.Cursor[Any], sale: Sale, postback_ids: list[int]) -> list[int]:
    """The transaction, its event and a delivery per postback; the deliveries' ids."""
    now = sale.at
    common = {"sale_amount": sale.amount, "commission": sale.commission, "channel": "api", "created_at": now}
    transaction = {
        "sales_id": sale.sales_id,
        "program_id": sale.program_id,
        "click_pk": sale.click_pk,
        "publisher_id": sale.publisher_id,
        "traffic_source_id": sale.source_id,
        "order_number": sale.order_number,
        "currency": sale.currency,
        "event_type": "sale",
        "status": "pending",
        "event_time": now,
        "updated_at": now,
    }
    try:
        cursor.execute(INSERT_TRANSACTION, {**common, **transaction})
    except psycopg.errors.UniqueViolation:
        raise Refused("409 Conflict", "order_number was reported already") from None
    transaction_id = _returned(cursor)
    event = {"transaction_id": transaction_id, "kind": "created", "status": "pending", "occurred_at": now}
    cursor.execute(INSERT_EVENT, {**common, **event})
    event_id = _returned(cursor)
    deliveries = []
    for postback_id in postback_ids:
        delivery = {
            "postback_id": postback_id,
            "transaction_event_id": event_id,
            "transaction_id": transaction_id,
            "publisher_id": sale.publisher_id,
            "state": "pending",
            "attempt_count": 0,
            "next_attempt_at": now,
            "queued_at": now,
            "replayed_after_attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        cursor.execute(INSERT_DELIVERY, delivery)
        deliveries.append(_returned(cursor))
    return deliveries


def _matching_postbacks(rows: Sequence[Any], source_id: int | None, program_id: int) -> list[int]:
    """The postbacks a new pending sale fires: rows are postback x scope entry, ordered by postback."""
    scopes: dict[int, tuple[Any, Any, set[int], set[int]]] = {}
    for row in rows:
        if row.postback_id is None:
            continue
        _, _, sources, programs = scopes.setdefault(row.postback_id, (row.events, row.statuses, set(), set()))
        if row.scope_source_id is not None:
            sources.add(row.scope_source_id)
        if row.scope_program_id is not None:
            programs.add(row.scope_program_id)
    return [
        postback_id
        for postback_id, (events, statuses, sources, programs) in scopes.items()
        if "sale" in events
        and "pending" in statuses
        and (not sources or source_id in sources)
        and (not programs or program_id in programs)
    ]


def _api_key(header: str) -> tuple[str, str]:
    scheme, _, token = header.partition(" ")
    kind, _, rest = token.strip().partition("_")
    key_id, _, secret = rest.partition("_")
    if scheme.lower() != "bearer" or kind != "adv" or len(key_id) != 12 or not secret:
        raise Refused("401 Unauthorized", "expected 'Bearer <advertiser API key>'")
    return key_id, secret


def _secret_matches(stored: str | None, secret: str) -> bool:
    algorithm, _, rest = (stored or "").partition("$")
    salt, _, digest = rest.partition("$")
    computed = hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
    return algorithm == "sha256" and hmac.compare_digest(computed, digest)


def _body(environ: Environ) -> Any:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 < length <= MAX_BODY:
        raise Refused("400 Bad Request", f"body: a JSON object of at most {MAX_BODY} bytes")
    try:
        return json.loads(environ["wsgi.input"].read(length), parse_float=Decimal)
    except ValueError:
        raise Refused("400 Bad Request", "body: must be a JSON object") from None


def _report(body: Any) -> tuple[str, str, Decimal]:
    if not isinstance(body, dict):
        raise Refused("400 Bad Request", "body: must be a JSON object")
    click_id, order_number = body.get("click_id"), body.get("order_number")
    if not isinstance(click_id, str) or not 0 < len(click_id) <= 32:
        raise Refused("400 Bad Request", "click_id: required, at most 32 characters")
    if not isinstance(order_number, str) or not 0 < len(order_number.strip()) <= 255:
        raise Refused("400 Bad Request", "order_number: required, at most 255 characters")
    try:
        amount = Decimal(str(body.get("sale_amount")))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise Refused("400 Bad Request", "sale_amount: an amount of at most 2 decimals")
    return click_id, order_number.strip(), amount


def _sub_id(name: str, value: str | None) -> str | None:
    if value and len(value) > SUB_ID_LENGTH:
        raise Refused("400 Bad Request", f"{name}: at most {SUB_ID_LENGTH} characters")
    return value or None


def _whole_number(name: str, value: str | None) -> int:
    if not value or not value.isascii() or not value.isdigit() or len(value) > 18 or int(value) < 1:
        raise Refused("400 Bad Request", f"{name}: a positive whole number is required")
    return int(value)


def _returned(cursor: psycopg.Cursor[Any]) -> int:
    row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def _send(
    start_response: StartResponse,
    status: str,
    content_type: str,
    body: bytes,
    headers: tuple[tuple[str, str], ...] = (),
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers])
    return [body]


class Connections:
    """One connection to each server per process, opened at its first use: after gunicorn's fork (a child
    never uses its parent's)."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        # SQLAlchemy's URL names the driver (postgresql+psycopg://); libpq's does not.
        self.database_url = re.sub(r"^postgresql\+psycopg://", "postgresql://", database_url)
        self.redis_url = redis_url
        self._pid = 0
        self._database: psycopg.Connection[Any] | None = None
        self._redis: redis.Redis | None = None

    def _own(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._database, self._redis = os.getpid(), None, None

    def database(self) -> psycopg.Connection[Any]:
        self._own()
        if self._database is None or self._database.closed:
            # Rows by column name, as the app makes them.
            self._database = psycopg.connect(self.database_url, row_factory=namedtuple_row)
        return self._database

    def redis(self) -> redis.Redis:
        self._own()
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.redis_url)
        return self._redis

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor; the transaction is committed when the block succeeds, rolled back otherwise (a
        connection that broke is forgotten: the next request opens another)."""
        connection = self.database()
        try:
            with connection.cursor() as cursor:
                yield cursor
        except BaseException:
            try:
                connection.rollback()
            except psycopg.Error:
                self._database = None
            raise
        connection.commit()

    def close(self) -> None:
        if self._pid == os.getpid():
            if self._database is not None:
                self._database.close()
            if self._redis is not None:
                self._redis.close()
        self._pid, self._database, self._redis = 0, None, None


app = BareApp(os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", ""))
