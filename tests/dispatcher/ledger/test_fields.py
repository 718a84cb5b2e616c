"""The ledger's field parsers on the values the validator fuzzing found (no app, no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dispatcher.ledger import fields, ids
from dispatcher.validation import FieldError

NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize("value", ["x\ud800", "\udfff", " a\udc80b "])
def test_text_refuses_a_lone_surrogate_naming_the_field(value: str) -> None:
    with pytest.raises(FieldError) as refused:
        fields.text("order_number", value, max_length=255)

    assert refused.value.field == "order_number" and "surrogate" in refused.value.problem


def test_text_keeps_characters_outside_the_basic_plane() -> None:
    assert fields.text("order_number", " 😀-1 ", max_length=255) == "😀-1"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_offset_that_leaves_the_calendar_is_a_field_error(moment: str) -> None:
    with pytest.raises(FieldError) as refused:
        fields.event_time("event_time", moment, NOW, not_before=None)

    assert refused.value.field == "event_time"


@pytest.mark.parametrize(
    ("raw", "code", "stored"),
    [
        ("1.0000000000000000000000000000", "USD", "1.00"),  # 29 digits, trailing zeros: exactly 1
        ("999999999999.99", "USD", "999999999999.99"),
        ("999999999999.9999", "CLF", "999999999999.9999"),
        ("1E+2", "JPY", "100"),
        ("-0", "USD", "0.00"),
        ("-0.000", "KWD", "0.000"),
    ],
)
def test_an_amount_is_kept_exactly_in_the_currencys_minor_units(raw: str, code: str, stored: str) -> None:
    amount = fields.in_currency("sale_amount", fields.amount("sale_amount", raw), code, raw)

    assert str(amount) == stored


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("1.0000000000000000000000000000001", "at most 2 decimals"),  # was rounded in the 28-digit context
        (Decimal("0.0100000000000000000000000000000000000001"), "at most 2 decimals"),
        (Decimal("1." + "0" * 40), "at most 40 digits"),
        (Decimal("1." + "0" * 9998 + "1"), "at most 40 digits"),
        (Decimal("-0.001"), "must not be negative"),
    ],
)
def test_an_amount_with_too_many_digits_is_refused_not_rounded(raw: object, problem: str) -> None:
    with pytest.raises(FieldError) as refused:
        fields.in_currency("sale_amount", fields.amount("sale_amount", raw), "USD", raw)

    assert refused.value.field == "sale_amount" and problem in refused.value.problem


# A fresh id is named "new" (its value differs each run): parallel test processes must collect one list.
@pytest.mark.parametrize(
    "sales_id", ["k3Jd8xQp0aZw7LmN", "SALE-C", "a_b", "x" * 32, pytest.param(ids.new_sales_id(), id="new")]
)
def test_any_sales_id_made_or_stored_has_the_shape(sales_id: str) -> None:
    assert ids.could_be_sales_id(sales_id)


@pytest.mark.parametrize("sales_id", ["", "a\x00b", "a b", "é", "a.b", "a/b", "x" * 33, "ab\n", "a\ud800"])
def test_text_no_sales_id_can_be_is_told_apart(sales_id: str) -> None:
    assert not ids.could_be_sales_id(sales_id)
