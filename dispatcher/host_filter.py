"""What a destination-host filter matches (support search, bulk replay).

Deliveries keep "host" or "host:port" (a port other than the scheme's default, `workers.hosts.destination`).
A filter naming a port matches it exactly; a bare host name matches the host on every port, so support finds
`tracker.example:8443` by typing `tracker.example`.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_

from dispatcher.models import Delivery

# The character after ":" in ASCII: "host:" <= "host:<port>" < "host;" (the column compares bytes).
_AFTER_COLON = ";"


def host_matches(host: str) -> ColumnElement[bool]:
    column = Delivery.destination_host
    if ":" in host:  # a port (or an IPv6 address): exactly that
        return column == host
    # A range rather than LIKE: both databases answer it from the (destination_host, created_at) index, and
    # no character of the name needs escaping.
    return or_(column == host, and_(column > f"{host}:", column < f"{host}{_AFTER_COLON}"))
