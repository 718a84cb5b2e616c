"""Lint: what is wrong with a template, with positions and the fix, before it is saved."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from macros import foreign
from macros.catalog import BY_NAME, CLICK_MACROS, sample_values
from macros.encoding import Context, Location
from macros.findings import Finding
from macros.parse import MACRO, Token, parse
from macros.template import Template

MAX_URL_LENGTH = 2048
# Query parameters in which trackers (Voluum, ClickFlare, FunnelFlux, RedTrack...) expect what the publisher
# earns: the commission (#ca#), not the sale amount (#sa#).
PAYOUT_PARAMETERS = frozenset({"payout", "commission", "revenue", "earnings", "cost"})
_PARAMETER_BEFORE = re.compile(r"[?&]([A-Za-z0-9_.\-\[\]]+)=$")


def lint(template: str, context: Context = Context.URL) -> list[Finding]:
    """Errors and warnings, in template order. Rules about URLs apply to the URL context only."""
    parsed = parse(template, context)
    findings = [*parsed.problems]
    for token in parsed.tokens:
        findings.extend(_token_findings(token, context))
    findings.extend(_literal_findings(parsed))
    if context is Context.URL:
        findings.extend(_url_findings(parsed))
    elif context is Context.JSON:
        findings.extend(_json_findings(parsed))
    return sorted(findings, key=lambda f: (f.start, f.end, f.code))


def _token_findings(token: Token, context: Context) -> Iterator[Finding]:
    if token.name in BY_NAME:
        # In a header :raw only skips escaping "%": what a header cannot carry is still encoded when sent.
        if token.modifier == "raw" and context not in (Context.TEXT, Context.HEADER):
            yield _warning(
                "raw_modifier",
                f"{token.text} is sent without encoding, so a value holding & = / # or quotes can change the"
                f" request; use #{token.name}# unless the receiver needs it unencoded.",
                token,
            )
        if token.location is Location.FRAGMENT:
            yield _warning(
                "macro_in_fragment",
                f"{token.text} is after a literal '#' in the URL, in the fragment, which is never sent to the"
                " server; move it into the query.",
                token,
            )
        return
    lower = token.name.lower()
    if lower in foreign.HASH:
        yield _error("foreign_syntax", foreign.hint_message(token.text, foreign.HASH[lower]), token)
    elif lower in BY_NAME:
        fixed = f"#{lower}:{token.modifier}#" if token.modifier is not None else f"#{lower}#"
        yield _error("wrong_case", f"Macro names are lower case: write {fixed}, not {token.text}.", token)
    else:
        close = difflib.get_close_matches(lower, list(BY_NAME), n=1)
        hint = f"did you mean #{close[0]}#?" if close else "see the macro list."
        yield _error("unknown_macro", f"Unknown macro {token.text}; {hint}", token)


def _literal_findings(parsed: Template) -> Iterator[Finding]:
    source = parsed.source
    starts = [0, *(t.end for t in parsed.tokens)]
    ends = [*(t.start for t in parsed.tokens), len(source)]
    for start, end in zip(starts, ends, strict=True):
        text = source[start:end]
        yield from foreign.literal_findings(text, start, parsed.context)
        yield from _unclosed(text, start)


def _unclosed(text: str, offset: int) -> Iterator[Finding]:
    pos = text.find("#")
    while pos >= 0:
        name = _identifier(text, pos + 1)
        if name and name.lower() in BY_NAME:
            end = offset + pos + 1 + len(name)
            yield Finding(
                "error",
                "unclosed_macro",
                f"#{name} has no closing '#'; write #{name.lower()}#.",
                offset + pos,
                end,
            )
        pos = text.find("#", pos + 1)


def _identifier(text: str, start: int) -> str:
    end = start
    while end < len(text) and (text[end].isascii() and (text[end].isalnum() or text[end] == "_")):
        end += 1
    return text[start:end]


def _url_findings(parsed: Template) -> Iterator[Finding]:
    source = parsed.source
    if len(source) > MAX_URL_LENGTH:
        yield Finding(
            "error",
            "too_long",
            f"The URL template is {len(source)} characters; the limit is {MAX_URL_LENGTH}.",
            MAX_URL_LENGTH,
            len(source),
        )
    scheme, host = _scheme_and_host(MACRO.sub("x", source))
    if scheme not in ("http", "https") or not host:
        shown = source if len(source) <= 60 else source[:57] + "..."
        yield Finding(
            "error",
            "not_absolute_url",
            f"'{shown}' is not an absolute http(s) URL; start it with https://, e.g."
            " https://tracker.example/postback?cid=#fobs#.",
            0,
            len(source),
        )
    elif scheme == "http":
        yield Finding(
            "warning",
            "insecure_http",
            "http:// sends the postback unencrypted; use https:// if your tracker supports it.",
            0,
            len("http"),
        )
    for token in parsed.tokens:
        before = _PARAMETER_BEFORE.search(source, 0, token.start)
        if token.name == "sa" and before and before.group(1).lower() in PAYOUT_PARAMETERS:
            yield _warning(
                "sale_amount_as_payout",
                f"{before.group(1)}={token.text} reports the whole sale amount as your payout; your earnings"
                " are the commission: write #ca#.",
                token,
            )
    if not parsed.macro_names & CLICK_MACROS:
        yield Finding(
            "warning",
            "no_click_macro",
            "No macro identifies the click, so your tracker cannot attribute the conversion: put your"
            " tracker's click ID in the tracking link's fobs parameter and send it back, e.g. cid=#fobs#.",
            0,
            len(source),
        )


def _scheme_and_host(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.hostname or ""
    except ValueError:
        return "", ""


def _json_findings(parsed: Template) -> Iterator[Finding]:
    if parsed.problems:
        return
    try:
        json.loads(parsed.expand(sample_values()))
    except (ValueError, RecursionError) as exc:  # also an integer over 4,300 digits, or nesting too deep
        reason = (
            exc.msg
            if isinstance(exc, json.JSONDecodeError)
            else "a number has too many digits"
            if isinstance(exc, ValueError)
            else "nested too deeply"
        )
        yield Finding(
            "error",
            "invalid_json",
            f"With sample values the body is not valid JSON ({reason}); check quotes and commas around"
            " macros.",
            0,
            len(parsed.source),
        )


def _error(code: str, message: str, token: Token) -> Finding:
    return Finding("error", code, message, token.start, token.end)


def _warning(code: str, message: str, token: Token) -> Finding:
    return Finding("warning", code, message, token.start, token.end)
