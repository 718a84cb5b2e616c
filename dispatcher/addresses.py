"""Which addresses are public: the one rule shared by postback registration (`dispatcher.postback_rules`) and
the egress guard (`dispatcher.egress.ssrf`), so a literal refused when sending is refused when registering
too."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from dispatcher.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Prefixes that wrap an IPv4 address inside IPv6; the embedded address is what gets reached.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def why_refused(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """None when `address` may be reached, else the reason in a few words."""
    if any(address in network for network in allowed if network.version == address.version):
        return None
    for inner in _embedded_ipv4(address):
        if any(inner in network for network in allowed if network.version == 4):
            return None
        reason = why_refused(inner)
        if reason is not None:
            return f"{reason} (embedded in {address})"
    return _category(address)


def _category(address: IPAddress) -> str | None:
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "shared (CGNAT)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-global"
    return None


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.append(address.teredo[1])
    if any(address in prefix for prefix in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks).
    if int(address) >> 32 == 0 and int(address) > 1:
        found.append(ipaddress.IPv4Address(int(address)))
    return found
