"""The one reading of a postback URL's host: saving, the preview and sending all go through `parse`.

Saving checks the host `parse` finds and the sender connects to the URL `parse` rebuilds around that
same host, so a URL accepted at save goes where it was checked to go. A host is normalised as browsers do
(UTS #46 mapping, then IDNA 2008 A-labels): full-width letters and digits become ASCII and `。`, `．` and
`｡` separate labels, so `ｌｏｃａｌｈｏｓｔ` is `localhost` and `127。0。0。1` is `127.0.0.1`;
`exämple.com` is `xn--exmple-cua.com`.
IPv4 written the way resolvers also read it (`2130706433`, `0x7f.1`) becomes its dotted quad, and a trailing
dot is dropped. Whatever cannot be read that way is refused (`BadURL`), never guessed at.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import idna
import urllib3

from dispatcher.addresses import IPAddress

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_HOST = 253
# A label as resolvers take it: ASCII letters, digits, hyphens and the underscores some DNS names carry.
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
# A last label of this shape makes resolvers read the whole host as an IPv4 number (inet_aton).
_NUMERIC = re.compile(r"[0-9]+|0x[0-9a-f]*")
# RFC 3986 userinfo. A backslash in particular is where parsers part ways: urllib3 ends the host at it,
# urlsplit does not, so `http://a\@127.0.0.1/` would be checked as one host and sent to another.
_USERINFO = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:%-]*")


class BadURL(ValueError):
    """A URL that cannot be sent as written; the message names the value, `code` says what is wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # not_http | bad_port | bad_host | bad_userinfo


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL goes, as the sender will reach it."""

    scheme: str
    spelled: str  # the host as written (lower case), for messages
    host: str  # lower-case ASCII: a name in A-labels, a dotted-quad IPv4 or a compressed IPv6 (no brackets)
    port: int | None  # None: the scheme's default
    url: str  # the URL to send: this host, no default port, no fragment

    @property
    def address(self) -> IPAddress | None:
        """The address a literal host stands for; localhost is loopback whatever a resolver says."""
        if self.host == "localhost" or self.host.endswith(".localhost"):
            return ipaddress.IPv4Address("127.0.0.1")
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse(url: str) -> Target:
    """The URL's destination, or BadURL. `url` may be a template: macros cannot be in the host (lint)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an invalid [IPv6] or a netloc that changes under NFKC
        raise BadURL("not_http", f"cannot be read as a URL ({exc}), got {url!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise BadURL("not_http", f"must be an http:// or https:// URL with a host, got {url!r}")
    try:
        port = parts.port
    except ValueError:  # not a number, or beyond 65535
        port = 0
    if port == 0:
        raise BadURL("bad_port", f"must have a port from 1 to 65535, if any, got {url!r}")
    userinfo, at, _ = parts.netloc.rpartition("@")
    if not _USERINFO.fullmatch(userinfo):
        raise BadURL("bad_userinfo", f"{userinfo!r} before @ is not a valid user name, got {url!r}")
    host = normal_host(parts.hostname)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    sent = urlunsplit((scheme, f"{userinfo}{at}{netloc}", parts.path or "/", parts.query, ""))
    return Target(scheme, parts.hostname, host, port, sent)


def sendable(url: str) -> str:
    """The URL to send in place of `url` (BadURL if there is none)."""
    return parse(url).url


def as_sent(url: str) -> str:
    """`url` (already `sendable`) with its path and query quoted as the HTTP client quotes them on the wire.

    A signed GET signs its URL, so the URL signed must be the URL sent, to the byte: the client sends the
    request target of this same parse (`parse_url` quotes what a request line cannot carry and leaves what
    is already quoted alone, so a second pass changes nothing), which the tests check.
    """
    parsed = urllib3.util.parse_url(url)
    # A path that dot segments reduce to nothing (`/../`) goes on the wire as "/": signed as sent.
    return (parsed if parsed.path else parsed._replace(path="/")).url


def as_received(url: str) -> str:
    """`url` as its receiver can rebuild it: `scheme://` + the Host header + the request target (the path
    and query as on the request line). That is `url` without any `user:password@`, which travels as an
    Authorization header, and without a fragment, which is never sent."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{target}"


@functools.lru_cache(maxsize=4096)
def normal_host(host: str) -> str:
    """`host` (as urlsplit gives it: lower case, no brackets) as the sender will use it, or BadURL."""
    if ":" in host:  # only an IPv6 literal, in brackets, has colons
        try:
            if not host.isascii() or "%" in host:  # a zone id (link-local only, never a postback's)
                raise ValueError(host)
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise BadURL("bad_host", f"[{host}] is not an IPv6 address a postback can go to") from None
    name = host
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except UnicodeError as exc:  # idna.IDNAError is one
            raise BadURL("bad_host", f"{host} is not a valid international domain name ({exc})") from None
    name = name.lower().removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > MAX_HOST or not all(_LABEL.fullmatch(label) for label in labels):
        raise BadURL(
            "bad_host",
            f"{host} is not a valid host name (labels of letters, digits, - and _, each 1 to 63 long)",
        )
    if _NUMERIC.fullmatch(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(name)))
        except OSError:
            raise BadURL("bad_host", f"{host} ends in a number but is not an IPv4 address") from None
    return name
