"""Expansion: every macro, every modifier, every context, and the refusals."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum

import pytest

import macros
from macros import Context, MacroError, parse

WHEN = datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)
VALUES: Mapping[str, object] = {
    "fobs": "cl1ck-4f2a",
    "fobs2": "s2",
    "fobs3": "s3",
    "fobs4": "s4",
    "fobs5": "s5",
    "on": "ORD 1/2",
    "sa": Decimal("125.5"),
    "ca": Decimal("12.345"),
    "clickid": "9f8e",
    "flx_salesid": 48213377,
    "et": WHEN,
    "programid": 1042,
    "status": "Approved",
    "event": "sale",
    "currency": "usd",
    "programname": "Acme & Co",
    "advertiserid": 311,
    "publisherid": 7788,
    "tsid": 55,
    "txid": "48213377-2",
    "deliveryid": 900123,
    "attempt": 3,
    "ts": 1714567200,
    "rand": 42,
}
FLEXOFFERS = "http://yourdomain.com/pixel.track?sid=#fobs#&orderid=#on#&amount=#sa#&commission=#ca#&date=#et#"


def text(template: str, values: Mapping[str, object] = VALUES) -> str:
    return parse(template, Context.TEXT).expand(values)


def url(template: str, values: Mapping[str, object] = VALUES) -> str:
    return parse(f"https://t.example/pb?x={template}").expand(values).removeprefix("https://t.example/pb?x=")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("#fobs#", "cl1ck-4f2a"),
        ("#fobs2#", "s2"),
        ("#fobs3#", "s3"),
        ("#fobs4#", "s4"),
        ("#fobs5#", "s5"),
        ("#on#", "ORD 1/2"),
        ("#sa#", "125.50"),
        ("#ca#", "12.35"),
        ("#clickid#", "9f8e"),
        ("#flx_salesid#", "48213377"),
        ("#salesid#", "48213377"),
        ("#et#", "2024-05-01T12:34:56Z"),
        ("#programid#", "1042"),
        ("#status#", "Approved"),
        ("#event#", "sale"),
        ("#currency#", "usd"),
        ("#programname#", "Acme & Co"),
        ("#advertiserid#", "311"),
        ("#publisherid#", "7788"),
        ("#tsid#", "55"),
        ("#txid#", "48213377-2"),
        ("#deliveryid#", "900123"),
        ("#attempt#", "3"),
        ("#ts#", "1714567200"),
        ("#rand#", "42"),
    ],
)
def test_each_macro_expands_to_its_value(template: str, expected: str) -> None:
    assert text(template) == expected


def test_the_table_above_covers_the_whole_catalog() -> None:
    names = {spec.name for spec in macros.CATALOG}
    assert names == set(VALUES)
    assert parse(" ".join(f"#{n}#" for n in names)).macro_names == names


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("#et:iso#", "2024-05-01T12:34:56Z"),
        ("#et:unix#", "1714566896"),
        ("#et:date#", "2024-05-01"),
        ("#et:%Y-%m-%d %H:%M:%S#", "2024-05-01 12:34:56"),
        ("#et:%d/%m/%Y#", "01/05/2024"),
        ("#ts:iso#", "2024-05-01T12:40:00Z"),
        ("#ts:unix#", "1714567200"),
        ("#ts:date#", "2024-05-01"),
        ("#sa:cents#", "12550"),
        ("#ca:cents#", "1235"),
        ("#sa:0#", "126"),
        ("#sa:2#", "125.50"),
        ("#ca:3#", "12.345"),
        ("#ca:1#", "12.3"),
        ("#status:lower#", "approved"),
        ("#currency:upper#", "USD"),
        ("#on:b64#", "T1JEIDEvMg=="),
        ("#on:raw#", "ORD 1/2"),
        ("#sa:raw#", "125.50"),
        ("#attempt:upper#", "3"),
    ],
)
def test_each_modifier_formats_the_value(template: str, expected: str) -> None:
    assert text(template) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("#on#", "ORD%201%2F2"),
        ("#on:raw#", "ORD 1/2"),
        ("#on:b64#", "T1JEIDEvMg%3D%3D"),
        ("#programname#", "Acme%20%26%20Co"),
        ("#et#", "2024-05-01T12%3A34%3A56Z"),
        ("#et:%Y-%m-%d %H:%M:%S#", "2024-05-01%2012%3A34%3A56"),
        ("#sa#", "125.50"),
        ("#flx_salesid#", "48213377"),
    ],
)
def test_url_values_are_percent_encoded(template: str, expected: str) -> None:
    assert url(template) == expected


def test_the_flexoffers_example_expands() -> None:
    values = {
        "fobs": "abc123",
        "on": "A-1001",
        "sa": Decimal("99.90"),
        "ca": Decimal("9.99"),
        "et": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    assert parse(FLEXOFFERS).expand(values) == (
        "http://yourdomain.com/pixel.track?sid=abc123&orderid=A-1001&amount=99.90&commission=9.99"
        "&date=2024-01-02T03%3A04%3A05Z"
    )


def test_a_value_holding_a_macro_is_not_expanded_again() -> None:
    values = {"fobs": "#on#", "on": "#fobs#"}
    assert parse("#fobs#|#on#", Context.TEXT).expand(values) == "#on#|#fobs#"
    assert (
        parse("https://t.example/?a=#fobs#&b=#on#").expand(values)
        == "https://t.example/?a=%23on%23&b=%23fobs%23"
    )


def test_a_sub_id_cannot_add_a_parameter_or_a_path_segment() -> None:
    values = {"fobs": "a&b=c d/é"}
    expanded = parse("https://t.example/cb/#fobs#?sid=#fobs#").expand(values)
    assert expanded == "https://t.example/cb/a%26b%3Dc%20d%2F%C3%A9?sid=a%26b%3Dc%20d%2F%C3%A9"


@pytest.mark.parametrize("context", [Context.URL, Context.FORM, Context.TEXT])
def test_missing_values_expand_to_an_empty_string(context: Context) -> None:
    assert parse("a=#fobs3#;b=#sa#;c=#et:unix#", context).expand({"fobs3": None}) == "a=;b=;c="
    assert parse('{"a": "#fobs3#"}', Context.JSON).expand({}) == '{"a": ""}'


def test_a_bare_json_macro_without_a_value_becomes_null() -> None:
    assert parse('{"a": #sa#, "b": "#fobs#"}', Context.JSON).expand({}) == '{"a": null, "b": ""}'


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{"sid": "#fobs#"}', '{"sid": "a\\"b\\\\c\\n\\u00e9"}'),
        ('{"note": "id #fobs# here"}', '{"note": "id a\\"b\\\\c\\n\\u00e9 here"}'),
        ('{"sid": #fobs#}', '{"sid": "a\\"b\\\\c\\n\\u00e9"}'),
        ('{"amount": #sa#, "cents": #sa:cents#}', '{"amount": 125.50, "cents": 12550}'),
        ('{"id": #deliveryid#, "n": #attempt#, "t": #ts#}', '{"id": 900123, "n": 3, "t": 1714567200}'),
        ('{"sale": #flx_salesid#}', '{"sale": "48213377"}'),
        ('{"t": #et:unix#, "iso": #et#}', '{"t": 1714566896, "iso": "2024-05-01T12:34:56Z"}'),
        ('{"amount": "#sa#"}', '{"amount": "125.50"}'),
        ('{"b": #fobs:b64#}', '{"b": "YSJiXGMKw6k="}'),
    ],
)
def test_json_values_are_escaped_strings_or_numbers(template: str, expected: str) -> None:
    values = {**VALUES, "fobs": 'a"b\\c\né'}
    assert parse(template, Context.JSON).expand(values) == expected


def test_a_non_numeric_id_in_a_bare_json_macro_is_quoted() -> None:
    assert parse("[#deliveryid#, #programid#]", Context.JSON).expand(
        {"deliveryid": "d-1", "programid": "007"}
    ) == ('["d-1", "007"]')


def test_form_values_are_form_encoded() -> None:
    expanded = parse("sid=#fobs#&name=#programname#", Context.FORM).expand({**VALUES, "fobs": "a+b c=d&é"})
    assert expanded == "sid=a%2Bb+c%3Dd%26%C3%A9&name=Acme+%26+Co"


def test_text_context_leaves_values_unencoded() -> None:
    assert text("Bearer #fobs#", {"fobs": "a&b=c d"}) == "Bearer a&b=c d"


def test_literal_text_including_percent_signs_and_braces_is_kept() -> None:
    template = "https://t.example/a%20b/{x}?q=100%25&s=#fobs#&f={fobs}#frag"
    assert parse(template).expand({"fobs": "v"}) == "https://t.example/a%20b/{x}?q=100%25&s=v&f={fobs}#frag"


def test_unknown_macros_stay_as_written() -> None:
    assert text("#nope# #FOBS# #s2# #fobs#", {"fobs": "x"}) == "#nope# #FOBS# #s2# x"


@pytest.mark.parametrize(
    "template",
    [
        "https://#fobs#.example.com/pb",
        "https://t.example:#fobs#/pb",
        "https://#fobs#@t.example/pb",
        "#fobs#://t.example/pb",
    ],
)
def test_a_macro_in_scheme_host_user_or_port_is_refused(template: str) -> None:
    with pytest.raises(MacroError, match="host"):
        parse(template).expand({"fobs": "evil.example"})


@pytest.mark.parametrize(
    ("template", "modifier"), [("#et:bogus#", "bogus"), ("#fobs:cents#", "cents"), ("#sa:9#", "9")]
)
def test_an_unusable_modifier_is_refused_naming_it(template: str, modifier: str) -> None:
    with pytest.raises(MacroError, match=f"'{modifier}'"):
        text(template)


@pytest.mark.parametrize("name", ["sa", "ca", "fobs", "attempt", "et"])
def test_float_values_are_refused(name: str) -> None:
    with pytest.raises(TypeError, match="float"):
        text(f"#{name}#", {name: 1.5})


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_non_finite_money_is_refused(amount: Decimal) -> None:
    with pytest.raises(MacroError, match="finite"):
        text("#sa#", {"sa": amount})


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("0.005"), "0.01"),
        (Decimal("-0.001"), "0.00"),
        (Decimal("-12.345"), "-12.35"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("12.50"), "12.50"),
        (7, "7.00"),
    ],
)
def test_money_rounds_half_up_to_plain_decimals(amount: Decimal | int, expected: str) -> None:
    assert text("#sa#", {"sa": amount}) == expected


@pytest.mark.parametrize(
    "when",
    [
        datetime(2024, 5, 1, 12, 34, 56),
        datetime(2024, 5, 1, 14, 34, 56, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 5, 1, 12, 34, 56, 999999, tzinfo=UTC),
        1714566896,
    ],
)
def test_times_are_sent_in_utc_and_naive_times_are_utc(when: datetime | int) -> None:
    assert text("#et# #et:unix# #et:%H:%M %Z#", {"et": when}) == "2024-05-01T12:34:56Z 1714566896 12:34 UTC"


def test_rand_is_generated_once_per_expansion_when_not_given() -> None:
    template = parse("#rand#/#rand#", Context.TEXT)
    first, second = template.expand({}).split("/")
    assert first == second and first.isdigit()
    assert len({template.expand({}) for _ in range(20)}) > 1


def test_parse_is_cached_and_templates_are_immutable() -> None:
    template = parse(FLEXOFFERS)
    assert parse(FLEXOFFERS) is template
    with pytest.raises(AttributeError):
        template.source = "x"  # type: ignore[misc]
    assert template.macro_names == {"fobs", "on", "sa", "ca", "et"}


def test_macros_in_path_and_query_know_where_they_are() -> None:
    template = parse("https://t.example/a/#fobs#?b=#on#&c=#sa#")
    assert [t.location for t in template.tokens] == [
        macros.Location.PATH,
        macros.Location.QUERY,
        macros.Location.QUERY,
    ]


def test_an_invalid_strftime_pattern_is_refused() -> None:
    with pytest.raises(MacroError, match="strftime"):
        text("#et:%Y\x00#")


def test_a_str_enum_status_is_sent_as_its_value() -> None:
    class Status(str, Enum):  # noqa: UP042  (the mixin is the case str() gets wrong)
        APPROVED = "approved"

    assert text("#status#", {"status": Status.APPROVED}) == "approved"
    assert url("#status#", {"status": Status.APPROVED}) == "approved"


@pytest.mark.parametrize("pattern", ["%s", "%Q", "%Y%", "%-d"])
def test_strftime_patterns_outside_the_portable_list_are_refused(pattern: str) -> None:
    with pytest.raises(MacroError, match="strftime"):
        text(f"#et:{pattern}#")
