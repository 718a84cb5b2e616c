"""Which addresses a postback may reach: only globally routable ones, unless configuration opens a range.

The check runs on the addresses the connection will actually use (see `client`), so a DNS answer that
changes between the check and the connect cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

from dispatcher.addresses import IPAddress, why_refused
from dispatcher.config import IPNetwork

Resolver = Callable[[str, int], list[str]]


class Refused(Exception):
    """The destination may not be reached; never retried."""


class ResolveFailed(Exception):
    """The host name has no address (NXDOMAIN or resolver failure); retried, DNS may recover."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # The resolver's own words, without Python's "[Errno -2]" in front: the publisher reads this.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ResolveFailed(f"cannot resolve {host!r}: {reason}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def vet(host: str, addresses: Sequence[str], allowed: Sequence[IPNetwork] = ()) -> str:
    """The first address to connect to, if every address `host` resolves to may be reached; else Refused."""
    if not addresses:
        raise ResolveFailed(f"{host!r} resolved to no address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = why_refused(address, allowed)
        if reason is not None:
            raise Refused(
                f"{host} resolves to {address}, a {reason} address; postbacks only go to public ones"
            )
    return addresses[0]


__all__ = ["IPAddress", "Refused", "ResolveFailed", "Resolver", "system_resolver", "vet", "why_refused"]
