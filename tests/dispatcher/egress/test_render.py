"""Building the request: the URL around the host saving checked, headers made sendable, nothing left to fail
later as a connection error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

import macros
from dispatcher.egress import fields, render, urls
from dispatcher.models import Postback

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def build(url: str, *, fobs: str = "trk-1", **postback: Any) -> Any:
    hook = Postback(id=7, publisher_id=1, url_template=url, method=postback.pop("method", "GET"), **postback)
    job = render.Claimed(
        delivery_id=42,
        number=1,
        attempt_in_schedule=1,
        postback_id=7,
        sendable=True,
        paused_reason=None,
        success_body_contains=None,
        values={**macros.sample_values(), "fobs": fobs},
        postback=hook,
    )
    return render.build_request(job, NOW, render.USER_AGENT)


def test_a_macro_value_a_header_cannot_carry_is_percent_encoded() -> None:
    request = build("https://t.example/pb", fobs="日本語", headers={"X-Sub": "id-#fobs#"})

    assert request.headers["X-Sub"] == "id-%E6%97%A5%E6%9C%AC%E8%AA%9E"
    fields.check(request.headers)  # every header of the request can be sent


def test_a_percent_from_a_macro_is_encoded_so_a_url_decoder_gives_each_value_back() -> None:
    # A fobs that is itself "%E6%97%A5" and one that is "日" arrived alike: a decoder gave "日" twice.
    literal = build("https://t.example/pb", fobs="%E6%97%A5 50%", headers={"X-Sub": "rate 50% #fobs#"})
    character = build("https://t.example/pb", fobs="日", headers={"X-Sub": "rate 50% #fobs#"})

    assert literal.headers["X-Sub"] == "rate 50% %25E6%2597%25A5%2050%25"  # the template's text as typed
    assert character.headers["X-Sub"] == "rate 50% %E6%97%A5"
    assert unquote(literal.headers["X-Sub"].removeprefix("rate 50% ")) == "%E6%97%A5 50%"
    assert unquote(character.headers["X-Sub"].removeprefix("rate 50% ")) == "日"
    # Latin-1 letters and edge spaces too: the header is ASCII, whatever the receiver decodes its bytes as.
    latin = build("https://t.example/pb", fobs=" Café ", headers={"X-Sub": "#fobs#"})
    assert latin.headers["X-Sub"] == "%20Caf%C3%A9%20" and unquote(latin.headers["X-Sub"]) == " Café "


def test_a_line_break_from_a_macro_cannot_make_a_second_header() -> None:
    request = build("https://t.example/pb", fobs="x\r\nX-Admin: 1", headers={"X-Sub": "#fobs#"})

    assert request.headers["X-Sub"] == "x%0D%0AX-Admin:%201"
    assert "X-Admin" not in request.headers


def test_a_value_stored_before_saving_refused_it_is_sent_encoded_not_failed() -> None:
    request = build("https://t.example/pb", headers={"X-Euro": "€uro"})

    assert request.headers["X-Euro"] == "%E2%82%ACuro"


def test_a_header_name_stored_before_saving_refused_it_is_a_permanent_template_failure() -> None:
    # ValueError: what the engine and the send test count as `template`, never as a connect error.
    with pytest.raises(fields.BadHeader, match="the header name 'X-Ü' is not an HTTP token"):
        build("https://t.example/pb", headers={"X-Ü": "1"})


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://ｔｒａｃｋｅｒ。example/pb?cid=#fobs#", "http://tracker.example/pb?cid=trk-1"),
        ("https://exämple.com:443/pb?cid=#fobs##top", "https://xn--exmple-cua.com/pb?cid=trk-1"),
    ],
)
def test_the_url_sent_has_its_host_as_saving_read_it(url: str, sent: str) -> None:
    assert build(url).url == sent


def test_a_host_that_cannot_be_read_is_a_permanent_template_failure() -> None:
    with pytest.raises(urls.BadURL, match="a..b is not a valid host name"):
        build("http://a..b/pb?cid=#fobs#")
