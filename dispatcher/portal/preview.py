"""Live preview: a postback's templates expanded for a sample transaction, with the linter's findings.

The same findings block saving in `postback_rules.check`; here they are shown as the publisher types,
warnings too. The API checks a draft's fields first (`postback_rules.check_preview`: a value of the wrong type
is a 400 there, not taken as empty); the portal's live preview passes the form's values, which are text by
construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import macros
from dispatcher.config import IPNetwork
from dispatcher.egress import fields, urls
from dispatcher.postback_rules import (
    CONTENT_TYPES,
    HEADER_NAME_RULE,
    URL_REQUIRED,
    header_value_problem,
    url_problem,
)
from dispatcher.validation import FieldError


@dataclass(frozen=True)
class Note:
    field: str  # url | body_template | headers
    severity: str  # error | warning
    code: str
    message: str
    start: int
    end: int


@dataclass(frozen=True)
class Piece:
    """A part of what would be sent; `problem` is the error found in this part of the template, if any."""

    text: str
    problem: str | None = None


Pieces = tuple[Piece, ...]


@dataclass(frozen=True)
class Preview:
    method: str
    url: str | None  # None while the URL template has errors
    body: str | None
    content_type: str | None
    notes: tuple[Note, ...]
    # While a template has errors: what would be sent as far as it can be told, its bad parts marked
    # (the rest expanded), so that the publisher sees where the problem is instead of a blank.
    url_marked: Pieces | None = None
    body_marked: Pieces | None = None

    @property
    def ok(self) -> bool:
        return not any(note.severity == "error" for note in self.notes)

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "body": self.body,
            "content_type": self.content_type,
            "ok": self.ok,
            "findings": [asdict(note) for note in self.notes],
            "url_marked": _pieces_json(self.url_marked),
            "body_marked": _pieces_json(self.body_marked),
        }


def sample_values(
    status_map: Mapping[str, str] | None = None, given: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The catalog's sample transaction (with the `given` values in place of its own), its status in the
    receiver's word as a real send would be."""
    values = {**macros.sample_values(), **(given or {})}
    status = str(values.get("status", ""))
    if status_map and status_map.get(status):
        values["status"] = status_map[status]
    return values


PREVIEW_STATUSES = ("pending", "approved", "declined", "reversed")


def preview_status(raw: str | None) -> str | None:
    """The sample's status to preview with (blank: the sample's own, approved); another word is a
    `FieldError` naming `status`."""
    word = (raw or "").strip()
    if word and word not in PREVIEW_STATUSES:
        raise FieldError("status", word, f"must be one of {', '.join(PREVIEW_STATUSES)}")
    return word or None


def preview(
    values: Mapping[str, Any], allowed_networks: Sequence[IPNetwork] = (), status: str | None = None
) -> Preview:
    """`status`: the sample sale's status (through the postback's status words, as sending does)."""
    method = str(values.get("method") or "GET").upper()
    url = _text(values.get("url"))
    status_map = _mapping(values.get("status_map"))
    sample = sample_values(status_map, {"status": status} if status else None)
    notes = _notes("url", url, macros.Context.URL)
    if not url.strip():  # saving refuses it: `ok` is true exactly when saving would take the URL
        notes.append(Note("url", "error", "required", URL_REQUIRED, 0, 0))
    elif refused := url_problem(url.strip(), allowed_networks):  # saving strips it too
        notes.append(Note("url", "error", refused[0], refused[1], 0, len(url)))
    expanded_url = _sent(_expand(url, macros.Context.URL, sample)) if url and not _errors(notes) else None
    url_marked = _marked(url, macros.Context.URL, notes, sample) if url and expanded_url is None else None
    body, content_type, body_marked = None, None, None
    if method == "POST":
        body, content_type, body_notes = _body(values, sample)
        notes.extend(body_notes)
        if body is None and _errors(body_notes):
            template = _text(values.get("body_template"))
            context = CONTENT_TYPES.get(content_type or "", macros.Context.TEXT)
            body_marked = _marked(template, context, body_notes, sample)
    headers = _mapping(values.get("headers"))
    for name, value in headers.items():
        notes.extend(_header_notes(str(name).strip(), _text(value)))
    elsewhere = [_text(value) for value in headers.values()]
    if method == "POST":
        elsewhere.append(_text(values.get("body_template")))
    if any(macros.parse(text, macros.Context.TEXT).macro_names & macros.CLICK_MACROS for text in elsewhere):
        # The URL's warning is about the request: a body or header sending #fobs# identifies the click.
        notes = [note for note in notes if note.code != "no_click_macro"]
    return Preview(method, expanded_url, body, content_type, tuple(notes), url_marked, body_marked)


# Stand-ins for the bad parts while the rest is expanded: private-use characters, which no template uses
# and which expansion leaves as they are (only macro values are encoded, never the template's own text).
_MARK = "\ue000"


def _marked(
    template: str, context: macros.Context, notes: Sequence[Note], sample: Mapping[str, object]
) -> Pieces:
    """`template` as it would be sent: each part an error points at kept as written and marked, the rest
    expanded for the sample; an error about the whole template (a host saving refuses) marks all of it."""
    field = "url" if context is macros.Context.URL else "body_template"
    errors = [n for n in notes if n.field == field and n.severity == "error"]
    spans: list[tuple[int, int, str]] = []
    whole: str | None = None
    for note in sorted(errors, key=lambda n: (n.start, n.end)):
        if note.start == 0 and note.end >= len(template):
            whole = whole or note.message
        elif note.end > note.start and (not spans or note.start >= spans[-1][1]):
            spans.append((note.start, note.end, note.message))
    if _MARK in template:
        return (Piece(template, whole or (errors[0].message if errors else None)),)
    stand_in, at = [], 0
    for start, end, _ in spans:
        stand_in.append(template[at:start] + _MARK)
        at = end
    stand_in.append(template[at:])
    expanded = _expand("".join(stand_in), context, sample)
    good = expanded.split(_MARK) if expanded is not None else None
    if good is None or len(good) != len(spans) + 1:  # the rest cannot be expanded either: shown as written
        good = [chunk.removesuffix(_MARK) for chunk in stand_in]
    pieces: list[Piece] = []
    for index, text in enumerate(good):
        if text:
            pieces.append(Piece(text, whole))
        if index < len(spans):
            start, end, message = spans[index]
            pieces.append(Piece(template[start:end], message))
    return tuple(pieces)


def _pieces_json(pieces: Pieces | None) -> list[dict[str, str | None]] | None:
    return None if pieces is None else [{"text": piece.text, "problem": piece.problem} for piece in pieces]


def _header_notes(name: str, value: str) -> list[Note]:
    """What saving would refuse in a header (a name that is no HTTP token, text a header cannot carry), in
    saving's words, and the linter's findings."""
    notes = []
    if not fields.is_token(name):
        problem = f"{HEADER_NAME_RULE}, got {name!r}"
        notes.append(Note("headers", "error", "bad_header_name", problem, 0, 0))
    unsendable = header_value_problem(name, value)
    if unsendable:
        notes.append(Note("headers", "error", "unsendable_header", unsendable, 0, 0))
    for finding in macros.lint(value, macros.Context.HEADER):
        notes.append(Note("headers", finding.severity, finding.code, f"{name}: {finding.message}", 0, 0))
    return notes


def _sent(url: str | None) -> str | None:
    """The expanded URL as the workers send it: its host read as saving reads it (`ｌｏｃａｌｈｏｓｔ` is
    `localhost`, `exämple.com` is `xn--exmple-cua.com`)."""
    if url is None:
        return None
    try:
        return urls.sendable(url)
    except urls.BadURL:
        return url  # a URL saving refuses has its error note already


def _body(
    values: Mapping[str, Any], sample: Mapping[str, object]
) -> tuple[str | None, str | None, list[Note]]:
    template = _text(values.get("body_template"))
    if not template.strip():
        return None, None, []
    content_type = _text(values.get("content_type")).strip().lower() or (
        "application/json" if template.lstrip()[:1] in ("{", "[") else "application/x-www-form-urlencoded"
    )
    context = CONTENT_TYPES.get(content_type, macros.Context.TEXT)
    notes = _notes("body_template", template, context)
    body = None if _errors(notes) else _expand(template, context, sample)
    return body, content_type, notes


def _notes(name: str, template: str, context: macros.Context) -> list[Note]:
    if not template:
        return []
    return [
        Note(name, finding.severity, finding.code, finding.message, finding.start, finding.end)
        for finding in macros.lint(template, context)
    ]


def _expand(template: str, context: macros.Context, sample: Mapping[str, object]) -> str | None:
    try:
        return macros.parse(template, context).expand(sample)
    except macros.MacroError:
        return None


def _errors(notes: list[Note]) -> bool:
    return any(note.severity == "error" for note in notes)


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
