"""What a destination-host filter matches (support search, bulk replay).

Deliveries keep "host" or "host:port" (a port other than the scheme's default, `workers.hosts.destination`),
an IPv6 address in brackets ("[2001:db8::1]:8443"). A filter naming a port matches it exactly; a bare host
matches the host on every port, so support finds `tracker.example:8443` by typing `tracker.example`.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_

from dispatcher.egress.urls import BadURL, normal_host
from dispatcher.models import Delivery

# The character after ":" in ASCII: "host:" <= "host:<port>" < "host;" (the column compares bytes).
_AFTER_COLON = ";"


def searched_host(typed: str) -> str:
    """What support typed, in the form deliveries keep: lower case, international names as their ASCII
    (IDNA) form, no trailing dot, an IPv6 address compressed and in brackets, with or without a port.
    Something that is no host at all is kept as typed (lower case): it simply matches nothing. A pasted URL
    (`https://tracker.example:8443/pb?x=1`) or host with a path is searched by its host and port; a URL
    without a port (or with its scheme's default) means the default port only, which deliveries keep as the
    bare host: that is marked by a trailing ":" (`host_matches` then matches the bare host exactly)."""
    value = _host_part(typed.strip().lower())
    if value.startswith("["):
        address, _, port = value[1:].partition("]")
        host, suffix = address, port
    elif value.count(":") > 1:  # an IPv6 address without brackets cannot carry a port
        host, suffix = value, ""
    else:
        host, colon, port = value.partition(":")
        suffix = colon + port
    try:
        normal = normal_host(host)
    except BadURL:
        return value
    return (f"[{normal}]" if ":" in normal else normal) + suffix


def _host_part(value: str) -> str:
    """The host[:port] of a pasted URL or of a host followed by a path (a URL on its default port as
    "host:"); anything else as it is."""
    scheme, has_scheme, rest = value.partition("://")
    if not has_scheme:
        scheme, rest = "", value.removeprefix("//")
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    authority = authority.rpartition("@")[2]  # user:password@ is no part of the host
    if not (has_scheme or value.startswith("//")):
        return authority
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and authority.endswith(default) and not authority.endswith("]"):
        authority = authority.removesuffix(default)
    return authority if _has_port(authority) else f"{authority}:"


def _has_port(host: str) -> bool:
    """A port named: "host:8443", "[2001:db8::1]:8443" (after the brackets, a colon is the port's)."""
    return ":" in host.rpartition("]")[2]


def host_matches(host: str) -> ColumnElement[bool]:
    """`host`: `searched_host`'s form."""
    column = Delivery.destination_host
    if host.endswith(":"):  # a pasted URL on its scheme's default port (`searched_host`): the bare host only
        return column == host[:-1]
    if _has_port(host):  # exactly that
        return column == host
    # A range rather than LIKE: both databases answer it from the (destination_host, created_at) index, and
    # no character of the name needs escaping.
    return or_(column == host, and_(column > f"{host}:", column < f"{host}{_AFTER_COLON}"))
