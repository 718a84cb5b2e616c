"""The one host parser: saving, the preview and sending read a URL's host with `urls.parse`."""

from __future__ import annotations

import ipaddress

import pytest
import urllib3

from dispatcher.egress import urls


@pytest.mark.parametrize(
    ("spelled", "host"),
    [
        ("ｌｏｃａｌｈｏｓｔ", "localhost"),  # full-width letters
        ("ＬＯＣＡＬＨＯＳＴ", "localhost"),
        ("127。0。0。1", "127.0.0.1"),  # ideographic full stop
        ("127．0．0．1", "127.0.0.1"),  # full-width full stop
        ("127｡0｡0｡1", "127.0.0.1"),  # half-width ideographic full stop
        ("１２７.０.０.１", "127.0.0.1"),  # full-width digits
        ("①②⑦.0.0.1", "127.0.0.1"),  # circled digits (UTS #46 maps them)
        ("１０。０。０。５", "10.0.0.5"),
        ("ＥＸＡＭＰＬＥ.com", "example.com"),
        ("exämple.com", "xn--exmple-cua.com"),
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008, non-transitional: ß stays ß
        ("Tracker.Example.", "tracker.example"),
        ("a_b.tracker.example", "a_b.tracker.example"),
        ("2130706433", "127.0.0.1"),  # read as resolvers read it
        ("0x7f.1", "127.0.0.1"),
        ("０ｘ７ｆ.１", "127.0.0.1"),
        ("[2001:DB8:0::1]", "2001:db8::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ],
)
def test_a_host_is_read_as_the_sender_will_reach_it(spelled: str, host: str) -> None:
    target = urls.parse(f"http://{spelled}/pb?cid=#fobs#")

    assert target.host == host
    assert urls.parse(target.url).host == host  # and the URL rebuilt around it says the same


@pytest.mark.parametrize(
    ("url", "code", "words"),
    [
        ("http://a..b/pb", "bad_host", "a..b is not a valid host name"),
        ("http://%6cocalhost/pb", "bad_host", "%6cocalhost is not a valid host name"),
        ("http://a_b.exämple.com/pb", "bad_host", "is not a valid international domain name"),
        ("http://xn--zz.com/pb", None, None),  # ASCII names go to the resolver as they are
        ("http://256.0.0.1/pb", "bad_host", "256.0.0.1 ends in a number but is not an IPv4 address"),
        ("http://tracker.1/pb", "bad_host", "ends in a number but is not an IPv4 address"),
        ("http://" + "a" * 64 + ".example/pb", "bad_host", "each 1 to 63 long"),
        ("http://[fe80::1%25eth0]/pb", "bad_host", "is not an IPv6 address a postback can go to"),
        ("http://t.example:0/pb", "bad_port", "must have a port from 1 to 65535"),
        ("http://t.example:99999/pb", "bad_port", "must have a port from 1 to 65535"),
        ("http://t.example:８０/pb", "bad_port", "must have a port from 1 to 65535"),
        ("http://evil.example\\@127.0.0.1/", "bad_userinfo", "before @ is not a valid user name"),
        ("http://ｌｏｃａｌｈｏｓｔ：８０/pb", "not_http", "cannot be read as a URL"),
        ("ftp://t.example/pb", "not_http", "must be an http:// or https:// URL with a host"),
        ("http:///pb", "not_http", "must be an http:// or https:// URL with a host"),
    ],
)
def test_a_host_that_cannot_be_read_is_refused_naming_it(
    url: str, code: str | None, words: str | None
) -> None:
    if code is None:
        assert urls.parse(url).host == "xn--zz.com"
        return
    with pytest.raises(urls.BadURL) as refused:
        urls.parse(url)

    assert refused.value.code == code
    assert words is not None and words in str(refused.value)


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://T.example:80/pb?cid=1#frag", "http://t.example/pb?cid=1"),  # default port, no fragment
        ("https://t.example:443", "https://t.example/"),
        ("https://t.example:8443/pb", "https://t.example:8443/pb"),
        ("http://user:pw@ｔ.example/pb", "http://user:pw@t.example/pb"),
        ("http://[2001:db8::1]:8080/pb?a=b", "http://[2001:db8::1]:8080/pb?a=b"),
        ("http://exämple.com/pb?x=%E6%97%A5", "http://xn--exmple-cua.com/pb?x=%E6%97%A5"),
    ],
)
def test_the_url_is_rebuilt_around_that_host(url: str, sent: str) -> None:
    assert urls.sendable(url) == sent
    assert urls.sendable(sent) == sent


def test_the_literal_address_is_what_a_private_check_needs() -> None:
    assert urls.parse("http://ｌｏｃａｌｈｏｓｔ./").address == ipaddress.ip_address("127.0.0.1")
    assert urls.parse("http://sub.localhost/").address == ipaddress.ip_address("127.0.0.1")
    assert urls.parse("http://１０。０。０。５/").address == ipaddress.ip_address("10.0.0.5")
    assert urls.parse("http://tracker.example/").address is None


@pytest.mark.parametrize(
    "url",
    [
        "http://t.example/pb?cid=cl1ck-4f2a&amount=12.50",
        "http://t.example/a/../b?x=%7e&y=%e6|{}",
        "http://t.example/café?q=é&r=a b",
        "http://u:p@t.example:8080?only=query",
        "http://[2001:db8::1]:8080/x",
        "https://xn--exmple-cua.com/%2F?%3D=%26",
        "http://t.example/../?x=1",
        "http://t.example/..",
    ],
)
def test_a_url_as_sent_is_what_the_http_client_sends_and_receivers_rebuild(url: str) -> None:
    sent = urls.as_sent(urls.sendable(url))
    parsed = urllib3.util.parse_url(sent)  # as the client reads it (its request line is `request_uri`)

    assert parsed.url == sent  # a second parse changes nothing...
    # ...so the client, which parses the sendable URL once, puts on the wire the request line signed
    assert urllib3.util.parse_url(urls.sendable(url)).request_uri == parsed.request_uri
    assert urls.sendable(sent) == sent
    host = sent.split("//", 1)[1].split("/", 1)[0].rpartition("@")[2]
    assert urls.as_received(sent) == f"{sent.split(':', 1)[0]}://{host}{parsed.request_uri}"
