"""The advertiser side of the validator fuzz tests: a small network, near-valid sales and their oracle."""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import strategies as st
from sqlalchemy import select

from dispatcher.currencies import minor_units
from dispatcher.db import get_db
from dispatcher.models import Transaction
from tests.dispatcher.ledger.conftest import Network, build_network
from tests.security.fuzz_support import ANY_CHARS, HOSTILE_STRINGS, any_text, json_values

_orders = itertools.count(1)
EXACT = Context(prec=200)  # wide enough that no amount the oracle meets is rounded while checked
MAX_AMOUNT = Decimal("1000000000000")
# An amount is written with at most this many digits (a text amount with at most 40 characters).
MAX_DIGITS = 40


def network_with_postback(app: Flask, client: FlaskClient) -> Network:
    """The ledger tests' network, plus one postback: every recorded sale makes exactly one delivery row."""
    with get_db(app).session() as session:
        ids = build_network(app, session)
    built = Network(app=app, client=client, **ids)
    built.postback()
    return built


def new_order() -> str:
    return f"fz-{next(_orders)}"


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, str):
            return Decimal(value.strip())
        if isinstance(value, int | Decimal):
            return Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return None


def expected_amount(value: object, currency_digits: int = 2) -> Decimal | None:
    """The documented rule, written independently: the amount the sale is stored with, or None (refused)."""
    if value is None or (isinstance(value, str) and (not value.strip() or len(value) > 40)):
        return None
    if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
        return None
    number = _as_decimal(value)
    if number is None or not number.is_finite() or len(number.as_tuple().digits) > MAX_DIGITS:
        return None
    if number < 0 or number >= MAX_AMOUNT:
        return None
    unit = Decimal(1).scaleb(-currency_digits)
    if number.quantize(unit, context=EXACT) != number:
        return None
    return number


def commission_of(amount: Decimal, digits: int = 2) -> Decimal:
    """10% of the amount, rounded half up to the currency's minor units (the test program's rule)."""
    return (amount * 10 / 100).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


AMOUNT_WORDS = [
    "1e3",
    "1E+2",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "-0",
    "0",
    "0.00",
    "0.001",
    "0.10",
    " 1",
    "1 ",
    "-1",
    "12.345",
    "1e-2",
    "1_000",
    "999999999999.99",
    "1.0000000000000000000000000000001",
    "1.0000000000000000000000000000000000000",
    "0.0000000000000000000000000000000000000001",
    Decimal("1." + "0" * 60),
    Decimal("1." + "0" * 9998 + "1"),  # 10,000 digits, as a JSON number
    "1000000000000",
    "9" * 40,
    "9" * 41,
    "1,50",
    "$5",
    "５",
]
amounts = st.one_of(
    st.sampled_from(AMOUNT_WORDS),
    st.decimals(places=2, min_value=0, max_value=Decimal("999999999999.99")),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d) < 10**15),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
    st.integers(-(10**14), 10**14),
    json_values(),
)
currencies = st.one_of(
    st.sampled_from(["usd", "USD", " usd ", "EUR", "JPY", "KWD", "XXX", "US", "USDD", "", "€", "ＵＳＤ"]),
    json_values(),
)
times = st.one_of(
    st.sampled_from(
        [
            "2026-11-20T14:30:00Z",
            "2026-11-20T14:30:00",
            "2999-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "yesterday",
            "2026-13-45T99:99:99Z",
            "0",
            "99999999999999999999",
            "1" * 41,
            "2026-11-20T14:30:00+25:00",
            "2026-11-20 14:30",
            "",
        ]
    ),
    st.integers(-(10**12), 10**12),
    st.datetimes().map(lambda moment: moment.isoformat()),
    json_values(),
)
texts = st.one_of(
    st.text(ANY_CHARS, max_size=300),
    st.text(st.sampled_from("\x00\x01\x1f\x7f\t\r\n\ud800\udfff ab"), max_size=8),
    st.integers(-(10**20), 10**20),
    st.sampled_from(HOSTILE_STRINGS),
    json_values(),
)
# For each field of a report: values that are valid, nearly valid, or the wrong JSON type.
MUTATIONS: dict[str, st.SearchStrategy[Any]] = {
    "click_id": texts,
    "order_number": texts,
    "sale_amount": amounts,
    "currency": currencies,
    "event": st.one_of(st.sampled_from(["sale", "lead", "SALE", " Lead ", "click", ""]), json_values()),
    "status": st.one_of(
        st.sampled_from(["pending", "approved", "APPROVED", "declined", "reversed", "paid"]), json_values()
    ),
    "event_time": times,
    "commission": amounts,
    "publisher_id": st.one_of(st.integers(-5, 2**70), texts),
    "traffic_source_id": st.one_of(st.integers(-5, 2**70), texts),
    "program_id": st.one_of(st.integers(-5, 2**70), texts),
    "unknown": json_values(),  # a key that is not a field
}
# A currency may be fine on its own and wrong for the amount (12.34 JPY): then the amount is named.
RELATED = {"currency": {"sale_amount"}}
mutations = st.sampled_from(sorted(MUTATIONS)).flatmap(lambda name: st.tuples(st.just(name), MUTATIONS[name]))
unknown_keys = any_text.filter(lambda key: key not in MUTATIONS)


def stored(network: Network, sales_id: str) -> tuple[Transaction, list[str]]:
    """The transaction row (detached) and the kinds of its events."""
    with network.session() as session:
        row = session.scalars(select(Transaction).where(Transaction.sales_id == sales_id)).one()
        kinds = [event.kind for event in row.events]
        session.expunge(row)
        return row, kinds


def as_query_value(value: object) -> str | None:
    """How a URL would carry a JSON value: text as it is, null as absent, anything else as its text."""
    if value is None or isinstance(value, str):
        return value
    return str(value)


def check_accepted_sale(network: Network, body: dict[str, Any], sent: dict[str, Any]) -> Transaction:
    """A recorded sale stores what was sent: the amount exactly, the commission by the program's 10%."""
    row, kinds = stored(network, body["sales_id"])
    digits = minor_units(row.currency)
    amount = expected_amount(sent.get("sale_amount"), digits)
    assert amount is not None, ("a refusable amount was recorded", sent, row.sale_amount)
    assert row.sale_amount == amount, (row.sale_amount, sent)
    assert row.commission == commission_of(amount, digits), (row.commission, amount, row.currency)
    assert Decimal(body["commission"]) == row.commission, (body, row.commission)
    # -0 is recorded as 0: no minus sign in the answer or the row (macros print the row's text)
    assert not body["commission"].startswith("-") and not str(row.sale_amount).startswith("-"), body
    assert body["currency"] == row.currency and body["status"] == row.status, (body, row.status)
    assert kinds == ["created"], kinds
    assert row.order_number == str(sent["order_number"]).strip(), (row.order_number, sent)
    assert not any(ord(char) < 32 or ord(char) == 127 for char in row.order_number)
    assert row.event_time.utcoffset() is not None and not row.event_time.utcoffset(), row.event_time
    return row
