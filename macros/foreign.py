"""Placeholders from other networks and trackers, and what our macro for each is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from macros.encoding import Context
from macros.findings import Finding


@dataclass(frozen=True, slots=True)
class Hint:
    origin: str
    ours: str | None
    note: str = ""


def _fobs(n: int) -> str:
    return f"#fobs{n if n > 1 else ''}#"


def _numbered(prefix: str, origin: str, first: str) -> dict[str, Hint]:
    return {prefix + (first if n == 1 else str(n)): Hint(origin, _fobs(n)) for n in range(1, 6)}


_TRACKER = "your tracker's placeholder, left from its postback URL"
_CLICK_NOTE = " (the click ID your tracker put in the tracking link's fobs parameter)"

# Keys are lower case; matching ignores case.
CURLY: dict[str, Hint] = {
    **_numbered("aff_sub", "Everflow/HasOffers syntax", first=""),
    **_numbered("sub", "Everflow/Affise syntax", first="1"),
    **{
        f"sub{n}": Hint("Everflow/Affise syntax", None, "only five sub ids come back: #fobs#..#fobs5#")
        for n in range(6, 11)
    },
    **_numbered("subid", "Impact syntax", first="1"),
    "transaction_id": Hint(
        "Everflow/HasOffers syntax", "#clickid#", " (the network's click ID; the sale's ID is #flx_salesid#)"
    ),
    "payout": Hint("Everflow/HasOffers syntax", "#ca#"),
    "sale_amount": Hint("Everflow/HasOffers syntax", "#sa#"),
    "sum": Hint("Affise syntax", "#ca#"),
    "amount": Hint("Impact syntax", "#sa#"),
    "status": Hint("Affise/Impact syntax", "#status#"),
    "currency": Hint("Affise syntax", "#currency#"),
    "clickid": Hint(_TRACKER, "#fobs#", _CLICK_NOTE),
    "cf_click_id": Hint(_TRACKER, "#fobs#", _CLICK_NOTE),
}
HASH: dict[str, Hint] = {
    **_numbered("s", "CAKE/tracker syntax", first="1"),
    "price": Hint("CAKE/tracker syntax", "#ca#"),
    "leadid": Hint("CAKE syntax", "#flx_salesid#"),
    "payout": Hint("tracker syntax", "#ca#"),
    "subid": Hint("tracker syntax", "#fobs#"),
}
BANG: dict[str, Hint] = {
    "clickref": Hint("Awin syntax", "#fobs#"),
    "commission": Hint("Awin syntax", "#ca#"),
    "ordernumber": Hint("ShareASale syntax", "#on#"),
}
# Receivers' parameter names (Voluum, ClickFlare, FunnelFlux, Keitaro, RedTrack) -> the macro that fills them.
PARAMS: dict[str, str] = {
    **dict.fromkeys(("cid", "click_id", "clickid", "subid", "sub_id", "hit"), "#fobs#"),
    **dict.fromkeys(("payout", "rev", "revenue", "sum", "commission"), "#ca#"),
    **dict.fromkeys(("amount", "sale_amount"), "#sa#"),
    **dict.fromkeys(("txid", "tx", "tid", "transaction_id"), "#txid#"),
    **dict.fromkeys(("currency", "payout_currency"), "#currency#"),
    **dict.fromkeys(("ct", "et", "type", "event"), "#event#"),
    "status": "#status#",
    "conversion_time": "#et:unix#",
}

_CURLY = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BANG = re.compile(r"(!{2,3})([A-Za-z_][A-Za-z0-9_]*)\1")
_PLACEHOLDER = re.compile(r"\b(?:REPLACE|OPTIONAL)\b")
_PARAM_BEFORE = re.compile(r"""(?:([A-Za-z0-9_.-]+)=|"([A-Za-z0-9_.-]+)"\s*:\s*"?)$""")


def hint_message(found: str, hint: Hint) -> str:
    if hint.ours is None:
        return f"{found} is {hint.origin} and would arrive literally; {hint.note}."
    return f"{found} is {hint.origin} and would arrive literally; here it is {hint.ours}{hint.note}."


def literal_findings(text: str, offset: int, context: Context) -> Iterator[Finding]:
    """Foreign placeholders in one stretch of literal template text starting at `offset`."""
    for m in _CURLY.finditer(text):
        hint = CURLY.get(m.group(1).lower())
        if hint is not None:
            yield _error(hint_message(m.group(), hint), offset + m.start(), offset + m.end())
        elif context in (Context.URL, Context.FORM):
            yield _error(
                f"{m.group()} is not a macro here and would arrive literally; macros are written #name#.",
                offset + m.start(),
                offset + m.end(),
            )
    for m in _BANG.finditer(text):
        hint = BANG.get(
            m.group(2).lower(), Hint("Awin/ShareASale syntax", None, "macros here are written #name#")
        )
        yield _error(hint_message(m.group(), hint), offset + m.start(), offset + m.end())
    for m in _PLACEHOLDER.finditer(text):
        yield _error(_placeholder_message(m.group(), text[: m.start()]), offset + m.start(), offset + m.end())


def _placeholder_message(word: str, before: str) -> str:
    lead = f"{word} is {_TRACKER}, and would arrive literally"
    param = _PARAM_BEFORE.search(before)
    name = (param.group(1) or param.group(2)) if param else None
    ours = PARAMS.get(name.lower()) if name else None
    if ours is not None:
        return f"{lead}; for {name} put {ours}."
    tail = " or remove the parameter" if word == "OPTIONAL" else ""
    example = "e.g. #fobs# for the click ID, #ca# for the payout"
    return f"{lead}; put the macro whose value belongs here ({example}){tail}."


def _error(message: str, start: int, end: int) -> Finding:
    return Finding("error", "foreign_syntax", message, start, end)
