"""The parameters of an S2S URL: our short names, the names Integr8's URLs use for the same things, the ones
nothing reads (listed back as `ignored`, never silently dropped), and placeholders a platform left unfilled.

A platform's postback URL is a template it fills in (`?secure=TOKEN&transaction_id={clickid}`); one it did
not fill in arrives with the placeholder itself, which would otherwise be taken for a value (an order
number `{order_id}`, a sub id `#s2#`), and refused only later for a reason that hides the real one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from dispatcher.ledger.reports import SaleReport
from dispatcher.validation import FieldError

# Our names, short as trackers' postback URLs use them -> the report's fields.
QUERY_NAMES = {
    "clickid": "click_id",
    "on": "order_number",
    "sa": "sale_amount",
    "cur": "currency",
    "event": "event",
    "status": "status",
    "ca": "commission",
    "et": "event_time",
    "pub": "publisher_id",
    "ts": "traffic_source_id",
    "program": "program_id",
    "fobs": "fobs",
    "fobs2": "fobs2",
    "fobs3": "fobs3",
    "fobs4": "fobs4",
    "fobs5": "fobs5",
    "ip": "ip",
    "ua": "user_agent",
}
# Integr8's names (its S2S postback and clickless table) for what ours mean -> ours.
ALIASES = {
    "transaction_id": "clickid",
    "publisher": "pub",
    "external_transaction_id": "fobs",  # "the publisher's click ID": what a publisher's tracker matches on
    "sub_id": "fobs2",
    "revenue": "sa",
    "payout": "ca",
    "conversion_ip": "ip",
    "user_agent": "ua",
}
TOKEN_NAMES = ("token", "secure")
OTHER_NAMES = ("pixel",)
KNOWN = frozenset((*QUERY_NAMES, *ALIASES, *TOKEN_NAMES, *OTHER_NAMES))
# `REPLACE`/`OPTIONAL` (Integr8's and trackers' copy-me URLs), `{name}` / `{{name}}` / `%7Bname%7D`, `#name#`.
_PLACEHOLDER = re.compile(
    r"^(?:REPLACE|OPTIONAL)$|\{\{?\s*[A-Za-z_][\w.:-]*\s*\}\}?|%7B[A-Za-z_][\w.:-]*%7D|#[A-Za-z_][\w.:-]*#",
    re.IGNORECASE,
)
_BARE_WORDS = ("REPLACE", "OPTIONAL")


@dataclass
class Parameters:
    report: SaleReport
    token: str | None
    written: dict[str, str]  # report field -> the name the URL gave it by (errors use that name)
    ignored: list[str]
    refusal: FieldError | None = None  # to answer once the token is known to be good
    pixel: bool = False


def parse(values: Mapping[str, str]) -> Parameters:
    """The report an S2S URL (query string, or form body) makes, by our names or Integr8's."""
    refusal: FieldError | None = None
    given: dict[str, tuple[str, str]] = {}  # our name -> (name as written, value)
    for name in (*QUERY_NAMES, *ALIASES):
        if name not in values:
            continue
        ours = ALIASES.get(name, name)
        value = values[name]
        if ours in given and given[ours][1] != value:
            refusal = refusal or FieldError(
                name, value, f"gives {ours} a second value ({given[ours][0]}={given[ours][1]!r}): send one"
            )
            continue
        given.setdefault(ours, (name, value))
        refusal = refusal or _unfilled(name, value)
    token = values.get("token") if "token" in values else values.get("secure")
    report = SaleReport(**{QUERY_NAMES[ours]: value for ours, (_, value) in given.items()})
    written = {QUERY_NAMES[ours]: name for ours, (name, _) in given.items()}
    ignored = sorted({name for name in values if name not in KNOWN})
    return Parameters(report, token, written, ignored, refusal, values.get("pixel") == "1")


# A visitor's user agent is free text that may hold braces or hashes of its own: only a value that is
# nothing but a placeholder counts there.
_FREE_TEXT = frozenset({"ua", "user_agent"})


def _unfilled(name: str, value: str) -> FieldError | None:
    matching = _PLACEHOLDER.fullmatch if name in _FREE_TEXT else _PLACEHOLDER.search
    found = matching(value.strip())
    if found is None:
        return None
    word = found.group(0)
    if word.upper() in _BARE_WORDS and word not in _BARE_WORDS:
        return None  # `replace` or `Optional` in lower case is a word, not the copy-me placeholder
    return FieldError(
        name, value, f"is the placeholder {word} that the platform did not fill in: put the value there"
    )


def as_written(error: FieldError, written: dict[str, str]) -> FieldError:
    """The error names the parameter as the advertiser wrote it in the URL (`sa`, `revenue`), not as the
    report's field (`sale_amount`)."""
    name = written.get(error.field) or next(
        (query for query, report_field in QUERY_NAMES.items() if report_field == error.field), error.field
    )
    return FieldError(name, error.value, error.problem)
