"""Properties: whatever the sub id or order number holds, the receiver parses back exactly those values."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qs, quote, quote_plus, unquote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from macros import Context, encoding, parse

# Full unicode (no lone surrogates: they cannot be UTF-8), biased towards the characters that break URLs.
nasty = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]), st.sampled_from("&=#%/?+ \n\r\t;,\"'\\{}<>:@")
    ),
)
amounts = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=2, allow_nan=False)
ids = st.integers(min_value=0, max_value=2**53)


@given(sub=nasty, order=nasty)
def test_url_query_values_parse_back_exactly(sub: str, order: str) -> None:
    url = parse("https://t.example/pb?sid=#fobs#&orderid=#on#&fixed=1").expand({"fobs": sub, "on": order})
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "t.example", "/pb", "")
    assert parse_qs(parts.query, keep_blank_values=True, strict_parsing=True) == {
        "sid": [sub],
        "orderid": [order],
        "fixed": ["1"],
    }


@given(sub=nasty, order=nasty)
def test_url_path_segments_parse_back_exactly(sub: str, order: str) -> None:
    url = parse("https://t.example/cb/#fobs#/#on#?x=1").expand({"fobs": sub, "on": order})
    parts = urlsplit(url)
    assert parts.netloc == "t.example" and parts.query == "x=1" and parts.fragment == ""
    assert [unquote(s, errors="strict") for s in parts.path.split("/")] == ["", "cb", sub, order]


@given(sub=nasty, order=nasty)
def test_form_values_parse_back_exactly(sub: str, order: str) -> None:
    body = parse("sid=#fobs#&orderid=#on#", Context.FORM).expand({"fobs": sub, "on": order})
    assert parse_qs(body, keep_blank_values=True, strict_parsing=True) == {"sid": [sub], "orderid": [order]}


@given(sub=nasty, order=nasty, amount=amounts, sales_id=ids, attempt=st.integers(1, 99))
def test_json_values_parse_back_exactly(
    sub: str, order: str, amount: Decimal, sales_id: int, attempt: int
) -> None:
    template = (
        '{"sid": "#fobs#", "order": #on#, "note": "order #on# for #fobs#", "amount": #sa#,'
        ' "id": #deliveryid#, "attempt": #attempt#, "missing": #fobs2#}'
    )
    values = {"fobs": sub, "on": order, "sa": amount, "deliveryid": sales_id, "attempt": attempt}
    body = json.loads(parse(template, Context.JSON).expand(values), parse_float=Decimal)
    assert body == {
        "sid": sub,
        "order": order,
        "note": f"order {order} for {sub}",
        "amount": amount,
        "id": sales_id,
        "attempt": attempt,
        "missing": None,
    }


@given(value=nasty)
def test_percent_and_form_encoding_match_the_standard_library(value: str) -> None:
    assert encoding.percent(value) == quote(value, safe="-._~")
    assert encoding.form(value) == quote_plus(value, safe="")


@given(value=nasty)
def test_a_value_is_never_expanded_again(value: str) -> None:
    macro_text = value + "#on##fobs##sa#"
    expanded = parse("#fobs#|#on#", Context.TEXT).expand({"fobs": macro_text, "on": macro_text})
    assert expanded == f"{macro_text}|{macro_text}"
