"""Escaping a value for the place it is written into."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from json.encoder import encode_basestring_ascii

Encoder = Callable[[str], str]


class Context(StrEnum):
    """What a template produces: a URL, a form body, a JSON body, a header value, or plain text."""

    URL = "url"
    FORM = "form"
    JSON = "json"
    HEADER = "header"
    TEXT = "text"


class Location(StrEnum):
    """Where a macro sits inside its template."""

    SCHEME = "scheme"
    AUTHORITY = "authority"
    PATH = "path"
    QUERY = "query"
    FRAGMENT = "fragment"
    FORM = "form"
    JSON_STRING = "json_string"
    JSON_BARE = "json_bare"
    HEADER = "header"
    TEXT = "text"


UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
all_unreserved = re.compile(r"[A-Za-z0-9._~-]*").fullmatch
# Indexed by byte value; str.translate on the latin-1 view of the UTF-8 bytes does the loop in C.
PERCENT_TABLE = [chr(b) if chr(b) in UNRESERVED else f"%{b:02X}" for b in range(256)]
_FORM = [*PERCENT_TABLE[:32], "+", *PERCENT_TABLE[33:]]
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?").fullmatch


def percent(value: str) -> str:
    """RFC 3986: everything outside the unreserved set, as UTF-8 %XX (same as quote(value, safe="-._~"))."""
    if all_unreserved(value):
        return value
    return value.encode().decode("latin-1").translate(PERCENT_TABLE)


def form(value: str) -> str:
    """application/x-www-form-urlencoded (same as quote_plus(value, safe=""))."""
    if all_unreserved(value):
        return value
    return value.encode().decode("latin-1").translate(_FORM)


def json_string_content(value: str) -> str:
    """The inside of a JSON string literal, ASCII-only."""
    return encode_basestring_ascii(value)[1:-1]


def json_value(value: str, numeric: bool) -> str:
    """A bare JSON value: a number if the macro is numeric and the text a valid JSON number, else a string."""
    if numeric and _JSON_NUMBER(value):
        return value
    return encode_basestring_ascii(value)


# Everything but printable ASCII: "%" itself, space and tab (a server trims them at a value's edges),
# control characters, and every non-ASCII character (Latin-1 bytes would reach a receiver reading headers
# as UTF-8 as garbage).
_HEADER_ESCAPED = re.compile(r"[^\x21-\x24\x26-\x7e]")


def header(value: str) -> str:
    """A macro's value in a header, as UTF-8 %XX outside printable ASCII (and for "%" and space), so that any
    URL decoder gives the value back exactly: "é日%" as "%C3%A9%E6%97%A5%25", and a value that was itself
    "%E6%97%A5" as "%25E6%2597%25A5", not as the encoding of "日"."""
    if not _HEADER_ESCAPED.search(value):
        return value
    return _HEADER_ESCAPED.sub(lambda found: utf8_percent(found.group()), value)


def utf8_percent(text: str) -> str:
    """Every character of `text` as its UTF-8 bytes, %XX each."""
    # "replace": a lone surrogate (no UTF-8 form) is sent as an encoded "?" rather than failing the send.
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8", "replace"))


def identity(value: str) -> str:
    return value


def encoder(location: Location) -> Encoder:
    if location in (Location.PATH, Location.QUERY, Location.FRAGMENT, Location.AUTHORITY, Location.SCHEME):
        return percent
    if location is Location.FORM:
        return form
    if location is Location.JSON_STRING:
        return json_string_content
    if location is Location.HEADER:
        return header
    return identity
