"""Header fields: typed text a header cannot carry is refused, what a macro brings is percent-encoded."""

from __future__ import annotations

import pytest

from dispatcher.egress import fields


@pytest.mark.parametrize(
    ("value", "char"),
    [
        ("€uro", "'€' (U+20AC)"),
        ("日本語", "'日' (U+65E5)"),
        ("a\x7fb", "'\\x7f' (U+007F)"),
        ("a\nb", "'\\n' (U+000A)"),
    ],
)
def test_text_a_header_cannot_carry_is_named(value: str, char: str) -> None:
    problem = fields.value_problem(value)

    assert problem is not None and problem.startswith(f"holds {char}")
    assert problem.endswith(f"got {value!r}")


@pytest.mark.parametrize("value", ["", "Bearer abc-123", "tab\there", "Café crème", "\x80\xff"])
def test_latin_1_text_is_sendable_as_it_is(value: str) -> None:
    assert fields.value_problem(value) is None
    assert fields.encode(value) == value
    value.encode("latin-1")  # what http.client does with it


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("日本語", "%E6%97%A5%E6%9C%AC%E8%AA%9E"),
        ("€uro", "%E2%82%ACuro"),
        ("id-日本 Café", "id-%E6%97%A5%E6%9C%AC Café"),
        ("a\r\nX-Evil: 1", "a%0D%0AX-Evil: 1"),  # never a second header
        ("\ud800", "%3F"),  # a lone surrogate has no UTF-8: sent as an encoded "?"
    ],
)
def test_what_a_header_cannot_carry_is_percent_encoded_as_utf8(value: str, sent: str) -> None:
    assert fields.encode(value) == sent
    sent.encode("latin-1")


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X Bad": "1"}, "the header name 'X Bad' is not an HTTP token"),
        ({"X-Ü": "1"}, "the header name 'X-Ü' is not an HTTP token"),
        ({"X:A": "1"}, "the header name 'X:A' is not an HTTP token"),
        ({"X-Euro": "€uro"}, "the value of X-Euro holds '€' (U+20AC)"),
    ],
)
def test_check_names_the_header_a_client_could_not_send(headers: dict[str, str], problem: str) -> None:
    with pytest.raises(fields.BadHeader) as refused:
        fields.check(headers)

    assert str(refused.value).startswith(problem)
