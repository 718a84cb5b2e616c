"""Hypothesis on the validators themselves, without HTTP: `dispatcher.postback_rules.check`,
`dispatcher.validation`, `dispatcher.ledger.fields` and the macro linter and expander.

Each either returns a clean value or raises its own refusal (`Invalid`, `FieldError`, `MacroError`) naming the
field; nothing else escapes, and what is accepted keeps the promises (Decimal amounts exact and in the
currency's units, UTC times, storable text, sendable URLs).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import macros
from dispatcher import validation
from dispatcher.ledger import fields
from dispatcher.models import CommissionType
from dispatcher.postback_rules import Invalid, PostbackSpec, check
from dispatcher.validation import FieldError
from tests.security.fuzz_intake import amounts, expected_amount, texts, times
from tests.security.fuzz_postbacks import FIELD_VALUES, body_templates, url_templates
from tests.security.fuzz_support import ANY_CHARS, HOSTILE_STRINGS, Figures, fuzz_settings

FIGURES = Figures("direct")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RULE_FIELDS = sorted(set(FIELD_VALUES) - {"signing_secret", "unknown"})


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    print(FIGURES.report())


@fuzz_settings
@given(
    values=st.fixed_dictionaries(
        {
            "url": st.sampled_from(
                ["https://tracker.example/pb?cid=#fobs#", "http://t.example:8443/?c=#fobs#"]
            )
        },
        optional={name: FIELD_VALUES[name] for name in RULE_FIELDS if name != "url"},
    )
)
@example(values={"url": "https://t.example/?c=#fobs#", "traffic_source_ids": ["²"]})
@example(values={"url": "https://t.example:0/?c=#fobs#"})
def test_rules_check_returns_a_clean_spec_or_names_every_bad_field(values: dict[str, Any]) -> None:
    FIGURES.count("rules.check", "none")
    try:
        spec = check(values, own_source_ids={1, 2})
    except Invalid as refused:
        assert refused.problems and set(refused.problems) <= {*values, "url"}, refused.problems
        assert all(isinstance(problem, str) and problem for problem in refused.problems.values())
        FIGURES.outcome("rules.check[none]", "refused")
        return
    FIGURES.outcome("rules.check[none]", "accepted")
    assert isinstance(spec, PostbackSpec)
    parts = urlsplit(spec.url)
    assert parts.scheme in ("http", "https") and parts.hostname and parts.port != 0
    assert set(spec.traffic_source_ids) <= {1, 2} and spec.method in ("GET", "POST")
    for text in (
        spec.url,
        spec.name,
        spec.body_template or "",
        *spec.headers.values(),
        *spec.status_map.values(),
    ):
        text.encode("utf-8")


TEXTY = st.text(ANY_CHARS, max_size=80) | st.sampled_from(HOSTILE_STRINGS)


@fuzz_settings
@given(
    name=st.sampled_from(["text", "email", "password", "positive_id", "http_url", "currency", "commission"]),
    value=TEXTY | st.sampled_from(["10%", "100.0001%", "5.00", "-1", "1e3%", "https://a.example:99999/"]),
)
@example(name="commission", value="NaN%")
@example(name="http_url", value="https://[::1/")
def test_boundary_validators_return_a_value_or_a_field_error_naming_the_field(name: str, value: str) -> None:
    FIGURES.count("validation.*", "none")
    validator = getattr(validation, name)
    try:
        result = validator("the_field", value)
    except FieldError as refused:
        assert refused.field == "the_field" and refused.problem
        return
    if name == "http_url":
        parts = urlsplit(result)
        assert parts.scheme in ("http", "https") and parts.hostname
    elif name == "commission":
        kind, number = result
        assert number.is_finite() and number >= 0 and number.as_tuple().exponent >= -4
        assert kind is CommissionType.FLAT or number <= 100
    elif name == "text":
        assert result and not any(ord(char) < 32 for char in result)


@fuzz_settings
@given(value=amounts, currency=st.sampled_from(["USD", "JPY", "KWD", "CLF"]))
@example(value="0.001", currency="KWD")
@example(value=Decimal("5.5"), currency="JPY")
def test_an_amount_is_exact_in_the_currencys_units_or_refused(value: object, currency: str) -> None:
    FIGURES.count("fields.amount+in_currency", "none")
    digits = {"USD": 2, "JPY": 0, "KWD": 3, "CLF": 4}[currency]
    try:
        number = fields.in_currency("sale_amount", fields.amount("sale_amount", value), currency, value)
    except FieldError as refused:
        assert refused.field == "sale_amount"
        assert expected_amount(value, digits) is None, (value, currency, refused)
        return
    assert number == expected_amount(value, digits), (value, currency, number)
    assert number.as_tuple().exponent == -digits


@fuzz_settings
@given(value=times, click_time=st.none() | st.just(NOW - timedelta(hours=1)))
@example(value="2026-11-20T12:04:59Z", click_time=None)
@example(value="2026-11-20T12:05:01Z", click_time=None)
def test_an_event_time_is_utc_between_the_click_and_now_or_refused(
    value: object, click_time: datetime | None
) -> None:
    FIGURES.count("fields.event_time", "none")
    try:
        moment = fields.event_time("event_time", value, NOW, not_before=click_time)
    except FieldError as refused:
        assert refused.field == "event_time"
        return
    assert moment.utcoffset() == timedelta(0)
    assert moment <= NOW + fields.CLOCK_SKEW and (click_time is None or moment >= click_time)


@fuzz_settings
@given(
    name=st.sampled_from(["text", "optional_text", "optional_id", "choice", "currency"]),
    value=texts,
)
def test_the_ledgers_field_parsers_return_a_value_or_a_field_error(name: str, value: object) -> None:
    FIGURES.count("fields.*", "none")
    try:
        if name in ("text", "optional_text"):
            result: object = getattr(fields, name)("order_number", value, max_length=255)
        elif name == "choice":
            result = fields.choice("order_number", value, ("sale", "lead"), "sale")
        else:
            result = getattr(fields, name)("order_number", value)
    except FieldError as refused:
        assert refused.field == "order_number"
        return
    if isinstance(result, str):
        assert not any(ord(char) < 32 or ord(char) == 127 for char in result)
        assert len(result) <= 255
    if name == "optional_id" and result is not None:
        assert isinstance(result, int) and 0 < result < 2**63


@fuzz_settings
@given(
    template=url_templates | body_templates | st.text(ANY_CHARS, max_size=60),
    context=st.sampled_from(list(macros.Context)),
)
@example(template="https://t.example/?t=#et:%Y\ud800#", context=macros.Context.URL)
@example(template='{"t": #et:%c#}', context=macros.Context.JSON)
@example(template="https://t.example/?a=\x00&c=#fobs#", context=macros.Context.URL)  # was a ValueError
@example(template="1" * 5000, context=macros.Context.JSON)  # was a ValueError from json.loads
def test_lint_never_raises_and_a_clean_template_expands_or_refuses_with_a_macro_error(
    template: str, context: macros.Context
) -> None:
    FIGURES.count("macros.lint+expand", "none")
    findings = macros.lint(template, context)
    assert all(finding.severity in ("error", "warning") for finding in findings)
    try:
        expanded = macros.parse(template, context).expand(macros.sample_values())
    except macros.MacroError:
        assert any(finding.severity == "error" for finding in findings)
        return
    assert isinstance(expanded, str)
