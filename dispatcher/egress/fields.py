"""Header fields a postback may send: names that are HTTP tokens, values HTTP/1.1 can carry.

A value goes on the wire as ISO-8859-1 (Latin-1): tab, space, visible ASCII and the bytes 0x80-0xFF (RFC 9110
field-value). Saving refuses typed text outside that (`value_problem`), so the publisher fixes it where it is
typed. What a macro brings at send time cannot be refused any more: `encode` percent-encodes, as UTF-8, each
character a header cannot carry and leaves the rest as it is, so `日本語` is sent as
`%E6%97%A5%E6%9C%AC%E8%AA%9E` and a line break as `%0A` (never a second header), and the delivery goes out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from macros.encoding import utf8_percent

# RFC 9110 token: the characters a field name may hold.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# RFC 9110 field-value characters, as Python's http.client sends them (Latin-1).
_SENDABLE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_UNSENDABLE = re.compile(r"[^\t\x20-\x7e\x80-\xff]")


class BadHeader(ValueError):
    """A header that cannot be sent; the message names it and its value."""


def is_token(name: str) -> bool:
    return _TOKEN.fullmatch(name) is not None


def value_problem(value: str) -> str | None:
    """Why typed text cannot be a header value, or None."""
    found = _UNSENDABLE.search(value)
    if found is None:
        return None
    char = found.group()
    return (
        f"holds {char!r} (U+{ord(char):04X}), which an HTTP header cannot carry: header values are"
        f" Latin-1 text (ASCII and accented Latin letters, no control characters), got {value!r}"
    )


def encode(value: str) -> str:
    """`value` with each character a header cannot carry percent-encoded as UTF-8 (`%E2%82%AC` for `€`)."""
    if _SENDABLE.fullmatch(value):
        return value
    return _UNSENDABLE.sub(lambda found: utf8_percent(found.group()), value)


def check(headers: Mapping[str, str]) -> None:
    """BadHeader for the first header an HTTP client could not send as it is."""
    for name, value in headers.items():
        if not is_token(name):
            raise BadHeader(
                f"the header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
            )
        problem = value_problem(value)
        if problem is not None:
            raise BadHeader(f"the value of {name} {problem}")
