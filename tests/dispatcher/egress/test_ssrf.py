"""Which addresses postbacks may reach, and that the address checked is the address connected to."""

from __future__ import annotations

import ipaddress

import pytest

from dispatcher.egress import ssrf
from dispatcher.egress.client import EgressClient, OutboundRequest


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("64:ff9b::10.0.0.1", "private"),
    ],
)
def test_non_public_addresses_are_refused_naming_what_they_are(address: str, category: str) -> None:
    reason = ssrf.why_refused(ipaddress.ip_address(address))

    assert reason is not None and reason.startswith(category)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert ssrf.why_refused(ipaddress.ip_address(address)) is None


def test_configured_networks_are_allowed_also_in_embedded_form() -> None:
    loopback = (ipaddress.ip_network("127.0.0.0/8"),)

    assert ssrf.why_refused(ipaddress.ip_address("127.0.0.1"), loopback) is None
    assert ssrf.why_refused(ipaddress.ip_address("::ffff:127.0.0.1"), loopback) is None
    assert ssrf.why_refused(ipaddress.ip_address("10.0.0.1"), loopback) == "private"


def test_one_bad_address_among_the_answers_refuses_the_host() -> None:
    with pytest.raises(ssrf.Refused, match="10.0.0.5, a private address"):
        ssrf.vet("mixed.example", ["93.184.216.34", "10.0.0.5"])


def test_a_name_resolving_to_loopback_is_refused_before_any_connection(tmp_path: object) -> None:
    client = EgressClient(resolver=lambda host, port: ["127.0.0.1"])

    exchange = client.send(OutboundRequest("GET", "http://tracker.example:8080/pb"))

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.permanent) == ("ssrf", True)
    assert "tracker.example resolves to 127.0.0.1, a loopback address" in exchange.error.message


def test_the_connection_goes_to_the_vetted_address_not_to_a_second_lookup() -> None:
    """A rebinding DNS answers public first, then private: only one lookup is made per connection."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    client = EgressClient([ipaddress.ip_network("127.0.0.0/8")], resolver=rebinding, connect_timeout_s=0.5)
    exchange = client.send(OutboundRequest("GET", "http://rebind.example:9/pb"))

    assert calls == ["rebind.example"]
    assert exchange.resolved_ip == "127.0.0.1"  # the address tried: nothing listens on port 9
    assert exchange.error is not None and exchange.error.error_class == "connect"
    assert exchange.error.message.startswith("cannot connect to rebind.example:9 (127.0.0.1): ")


def test_an_unresolvable_name_is_a_dns_error_worth_retrying() -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise ssrf.ResolveFailed(f"cannot resolve {host!r}")

    exchange = EgressClient(resolver=nxdomain).send(OutboundRequest("GET", "http://nowhere.example/pb"))

    assert exchange.error is not None
    assert (exchange.error.error_class, exchange.error.permanent) == ("dns", False)
