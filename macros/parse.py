"""Splitting a template into literal text and macro tokens, and placing each token (URL part, JSON string)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from macros.encoding import Context, Location
from macros.template import Template

# A modifier may hold spaces and ':' (strftime) but not what ends a query value or a JSON string.
MACRO = re.compile(r"#([A-Za-z_][A-Za-z0-9_]*)(?::([^#&=?\"\\\r\n]*))?#")
_SENTINEL = "\x00"
_SCHEME = re.compile(r"[^:/?#]*:")


@dataclass(frozen=True, slots=True)
class Token:
    """A macro-shaped `#name#` or `#name:modifier#`, known to the catalog or not."""

    text: str
    start: int
    end: int
    name: str
    modifier: str | None
    location: Location


@lru_cache(maxsize=4096)
def parse(template: str, context: Context = Context.URL) -> Template:
    """Parse once, expand many times. Never raises for a bad template: lint and expand see its problems."""
    literals, tokens = scan(template, context)
    return Template.build(template, context, literals, tokens)


def scan(template: str, context: Context) -> tuple[tuple[str, ...], tuple[Token, ...]]:
    """Literal texts (one more than tokens) and macro tokens, in order."""
    matches = list(MACRO.finditer(template))
    literals: list[str] = []
    pos = 0
    for m in matches:
        literals.append(template[pos : m.start()])
        pos = m.end()
    literals.append(template[pos:])
    locations = _locate(literals, context)
    tokens = tuple(
        Token(m.group(), m.start(), m.end(), m.group(1), m.group(2), loc)
        for m, loc in zip(matches, locations, strict=True)
    )
    return tuple(literals), tokens


def _locate(literals: list[str], context: Context) -> list[Location]:
    count = len(literals) - 1
    # A NUL typed into the template itself must not pass for a macro's place (the preview lints raw input).
    literals = [literal.replace(_SENTINEL, " ") for literal in literals]
    if context is Context.URL:
        return _url_locations(_SENTINEL.join(literals))
    if context is Context.JSON:
        return _json_locations(_SENTINEL.join(literals))
    if context is Context.HEADER:
        return [Location.HEADER] * count
    return [Location.FORM if context is Context.FORM else Location.TEXT] * count


def _url_locations(skeleton: str) -> list[Location]:
    """Which URL component each sentinel falls in (RFC 3986 section 3 boundaries)."""
    scheme = _SCHEME.match(skeleton)
    scheme_end = scheme.end() if scheme else 0
    authority_end = scheme_end
    if skeleton.startswith("//", scheme_end):
        authority_end = _find_any(skeleton, "/?#", scheme_end + 2)
    path_end = _find_any(skeleton, "?#", authority_end)
    query_end = _find_any(skeleton, "#", path_end)
    bounds = (
        (scheme_end, Location.SCHEME),
        (authority_end, Location.AUTHORITY),
        (path_end, Location.PATH),
        (query_end, Location.QUERY),
    )
    out: list[Location] = []
    for i, ch in enumerate(skeleton):
        if ch == _SENTINEL:
            out.append(next((loc for end, loc in bounds if i < end), Location.FRAGMENT))
    return out


def _find_any(text: str, chars: str, start: int) -> int:
    found = [i for i in (text.find(c, start) for c in chars) if i >= 0]
    return min(found, default=len(text))


def _json_locations(skeleton: str) -> list[Location]:
    out: list[Location] = []
    in_string = escaped = False
    for ch in skeleton:
        if ch == _SENTINEL:
            out.append(Location.JSON_STRING if in_string else Location.JSON_BARE)
            escaped = False
        elif escaped:
            escaped = False
        elif ch == "\\":
            escaped = in_string
        elif ch == '"':
            in_string = not in_string
    return out
