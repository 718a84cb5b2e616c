"""What a postback may be: one check shared by the portal form and the JSON API, so both say the same words.

`check` takes plain values (the API's JSON, or the form turned into the same shape by `form_values`) and
returns a clean `PostbackSpec`, or raises `Invalid` naming every bad field and its value at once. Lint
warnings never block saving; lint errors do.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import macros
from dispatcher import addresses
from dispatcher.config import IPNetwork
from dispatcher.egress import fields, urls
from dispatcher.models.ledger import TransactionStatus
from dispatcher.models.postbacks import DEFAULT_EVENTS, DEFAULT_STATUSES, POSTBACK_EVENTS
from macros.parse import MACRO

METHODS = ("GET", "POST")
STATUSES = tuple(status.value for status in TransactionStatus)
CONTENT_TYPES = {
    "application/json": macros.Context.JSON,
    "application/x-www-form-urlencoded": macros.Context.FORM,
}
# Set by the dispatcher or by the connection itself; a postback may not override them.
FORBIDDEN_HEADERS = {
    "host": "is set from the URL",
    "content-length": "is computed from the body",
    "connection": "is a hop-by-hop header",
    "keep-alive": "is a hop-by-hop header",
    "proxy-connection": "is a hop-by-hop header",
    "proxy-authenticate": "is a hop-by-hop header",
    "proxy-authorization": "is a hop-by-hop header",
    "te": "is a hop-by-hop header",
    "trailer": "is a hop-by-hop header",
    "transfer-encoding": "is a hop-by-hop header",
    "upgrade": "is a hop-by-hop header",
}
MAX_HEADERS = 20
URL_REQUIRED = "is required: paste your tracker's postback URL"
# What saving says of a header name that is no HTTP token (RFC 9110), which the preview repeats.
HEADER_NAME_RULE = "names must be HTTP tokens: letters, digits and !#$%&'*+-.^_`|~ (no spaces or colons)"
MAX_HEADER_VALUE = 1000
MAX_URL = 4096
MAX_BODY = 8192
MAX_WORD = 100
MAX_ID_DIGITS = 19  # a BIGINT id has at most 19 digits


@dataclass(frozen=True)
class PostbackSpec:
    url: str
    method: str = "GET"
    name: str = ""
    traffic_source_ids: tuple[int, ...] = ()  # empty: every traffic source of the publisher
    program_ids: tuple[int, ...] = ()  # empty: every program
    events: tuple[str, ...] = tuple(DEFAULT_EVENTS)
    statuses: tuple[str, ...] = tuple(DEFAULT_STATUSES)
    body_template: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status_map: dict[str, str] = field(default_factory=dict)
    success_body_contains: str | None = None
    active: bool = True

    def as_values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "method": self.method,
            "traffic_source_ids": list(self.traffic_source_ids),
            "program_ids": list(self.program_ids),
            "events": list(self.events),
            "statuses": list(self.statuses),
            "body_template": self.body_template,
            "content_type": self.content_type,
            "headers": dict(self.headers),
            "status_map": dict(self.status_map),
            "success_body_contains": self.success_body_contains,
            "active": self.active,
        }


class Invalid(ValueError):
    """Every problem found, as {field: problem}; the problem names the bad value."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(f"{name}: {problem}" for name, problem in self.problems.items())

    def as_json(self) -> dict[str, Any]:
        return {"error": self.message, "fields": self.problems}


def check(
    values: Mapping[str, Any],
    *,
    own_source_ids: Collection[int],
    programs: Mapping[int, bool] | None = None,
    allowed_networks: Sequence[IPNetwork] = (),
) -> PostbackSpec:
    """A clean spec from plain values, or `Invalid` with every problem.

    `programs` maps each program id the network knows to whether it may be chosen (see `_programs`).
    """
    checker = _Checker(values)
    method = checker.run("method", lambda v: _method(v), "GET")
    url = checker.run("url", lambda v: _url(v, allowed_networks), None)
    body_type = checker.run("content_type", lambda v: _content_type(v, values.get("body_template")), None)
    if "content_type" not in checker.problems and body_type is None:
        body_type = _default_content_type(values.get("body_template"))
    spec = PostbackSpec(
        url=url or "",
        method=method or "GET",
        name=checker.run("name", _name, "") or "",
        traffic_source_ids=checker.run("traffic_source_ids", lambda v: _sources(v, own_source_ids), ()),
        program_ids=checker.run("program_ids", lambda v: _programs(v, programs or {}), ()),
        events=checker.run("events", lambda v: _choices(v, POSTBACK_EVENTS, "events"), tuple(DEFAULT_EVENTS)),
        statuses=checker.run(
            "statuses", lambda v: _choices(v, STATUSES, "statuses"), tuple(DEFAULT_STATUSES)
        ),
        body_template=checker.run("body_template", lambda v: _body(v, body_type), None),
        content_type=body_type,
        headers=checker.run("headers", _headers, {}) or {},
        status_map=checker.run("status_map", _status_map, {}) or {},
        success_body_contains=checker.run("success_body_contains", _success_text, None),
        active=checker.run("active", _active, True),
    )
    if "url" not in values or values.get("url") in (None, ""):
        checker.problems.setdefault("url", URL_REQUIRED)
    if checker.problems:
        raise Invalid(checker.problems)
    if spec.method == "GET":
        # A GET sends no body: a template left over from switching methods is dropped, not an error.
        return replace(spec, body_template=None, content_type=None)
    return spec


class _Checker:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self.problems: dict[str, str] = {}

    def run(self, name: str, checker: Any, default: Any) -> Any:
        if name not in self.values or self.values[name] is None:
            return default
        try:
            return checker(self.values[name])
        except _Problem as problem:
            self.problems[name] = str(problem)
            return default


class _Problem(Exception):
    pass


def _got(problem: str, value: object) -> _Problem:
    return _Problem(f"{problem}, got {value!r}")


def _string(value: object, *, max_length: int) -> str:
    if not isinstance(value, str):
        raise _got("must be text", value)
    if len(value) > max_length:
        raise _Problem(f"must be at most {max_length} characters, got {len(value)}")
    # JSON may carry a lone surrogate ("\ud800"): no database can store it and no request can send it.
    if not value.isascii() and any("\ud800" <= char <= "\udfff" for char in value):
        raise _got("must be valid Unicode text (it holds a lone surrogate)", value)
    return value


def _method(value: object) -> str:
    word = _string(value, max_length=10).strip().upper()
    if word not in METHODS:
        raise _got("must be GET or POST", value)
    return word


def _name(value: object) -> str:
    text = _string(value, max_length=200).strip()
    if any(ord(char) < 32 for char in text):
        raise _got("must not contain control characters", value)
    return text


def _url(value: object, allowed: Sequence[IPNetwork]) -> str:
    url = _string(value, max_length=MAX_URL).strip()
    if not url:
        raise _Problem(URL_REQUIRED)
    bad = _character_problem(url)
    if bad:
        raise _Problem(bad)
    errors = [finding.message for finding in macros.lint(url) if finding.severity == "error"]
    if errors:
        raise _Problem(" ".join(errors))
    refused = _address_problem(url, allowed)
    if refused:
        raise _Problem(refused[1])
    return url


def url_problem(url: str, allowed: Sequence[IPNetwork] = ()) -> tuple[str, str] | None:
    """What keeps a URL from being saved besides its template's lint errors, as (code, message), or None:
    `bad_character`, `bad_port`, `bad_host`, `bad_userinfo` or `private_address`. The preview shows the
    same, so that it never says ok for a URL that saving refuses."""
    bad = _character_problem(url)
    return ("bad_character", bad) if bad else _address_problem(url, allowed)


def _character_problem(url: str) -> str | None:
    # A macro's modifier may hold spaces (a strftime pattern: #et:%Y-%m-%d %H:%M:%S#): the macro is replaced
    # by its value, percent-encoded, so no space is sent. Control characters are refused wherever they are.
    sent = MACRO.sub(lambda token: token.group().replace(" ", ""), url)
    if any(char.isspace() or ord(char) < 32 for char in sent):
        return f"must not contain spaces or control characters, got {url!r}"
    return None


def _address_problem(url: str, allowed: Sequence[IPNetwork]) -> tuple[str, str] | None:
    """The host as the sender will read it (`urls.parse`, the same function): a host it cannot read, a bad
    port or a literal non-public address is refused here, where the publisher can still fix it."""
    try:
        target = urls.parse(url)
    except urls.BadURL as bad:
        # Not http(s) or no host at all: the linter says so already, in its words.
        return None if bad.code == "not_http" else (bad.code, str(bad))
    refused = _refusal(target, allowed)
    return ("private_address", refused) if refused else None


def destination_problem(url: str, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why a URL whose host is a literal non-public address may not be saved (DNS is vetted when sending)."""
    try:
        target = urls.parse(url)
    except urls.BadURL:
        return None
    return _refusal(target, allowed)


def _refusal(target: urls.Target, allowed: Sequence[IPNetwork]) -> str | None:
    address = target.address
    # The egress guard's rule, so 6to4, NAT64, IPv4-compatible and multicast literals are refused here too.
    if address is None or addresses.why_refused(address, allowed) is None:
        return None
    kind = "loopback" if address.is_loopback else "private" if address.is_private else "non-public"
    # `2130706433 (127.0.0.1)`, `ｌｏｃａｌｈｏｓｔ (localhost)`: the spelling and what it reaches.
    shown = target.spelled if target.spelled == target.host else f"{target.spelled} ({target.host})"
    return f"{shown} is a {kind} address; postbacks only go to public addresses"


def _content_type(value: object, body: object) -> str | None:
    text = _string(value, max_length=100).strip().lower()
    if not text:
        return _default_content_type(body)
    if text not in CONTENT_TYPES:
        raise _got(f"must be one of {', '.join(CONTENT_TYPES)}", value)
    return text


def _default_content_type(body: object) -> str | None:
    if not isinstance(body, str) or not body.strip():
        return None
    return "application/json" if body.lstrip()[:1] in ("{", "[") else "application/x-www-form-urlencoded"


def _body(value: object, content_type: str | None) -> str | None:
    text = _string(value, max_length=MAX_BODY)
    if any(ord(char) < 32 and char not in "\t\r\n" for char in text):
        raise _got("must not contain control characters other than tabs and line breaks", text)
    if not text.strip():
        return None
    context = CONTENT_TYPES.get(content_type or _default_content_type(text) or "", macros.Context.TEXT)
    errors = [finding.message for finding in macros.lint(text, context) if finding.severity == "error"]
    if errors:
        raise _Problem(" ".join(errors))
    return text


def _sources(value: object, own: Collection[int]) -> tuple[int, ...]:
    def unknown(number: object) -> _Problem:
        return _Problem(f"{number} is not one of your traffic sources")

    return _ids(value, "traffic source", lambda number: None if number in own else unknown(number), unknown)


def _programs(value: object, programs: Mapping[int, bool]) -> tuple[int, ...]:
    """Programs of the network: every program is open to every publisher (there is no per-publisher list).

    `programs[id]` is False for a program that is not running (it or its advertiser inactive): it brings no
    new sales, so it cannot be added to a scope; where it already was, the caller maps it to True, so that
    changing another field keeps it and its approvals and reversals still fire.
    """

    def unknown(number: object) -> _Problem:
        return _Problem(f"{number} is not a program of this network")

    def problem(number: int) -> _Problem | None:
        if number not in programs:
            return unknown(number)
        return None if programs[number] else _Problem(f"{number} is not an active program")

    return _ids(value, "program", problem, unknown)


def _ids(
    value: object,
    what: str,
    problem: Callable[[int], _Problem | None],
    unknown: Callable[[str], _Problem],
) -> tuple[int, ...]:
    """A list of ids (numbers or digits as text), each passed by `problem`; sorted, without repeats."""
    if not isinstance(value, list | tuple):
        raise _got(f"must be a list of {what} ids ([] for all)", value)
    ids: list[int] = []
    for item in value:
        # ASCII digits only: "²" passes isdigit() but not int(), and 5,000 digits pass both but int().
        digits = str(item).strip() if isinstance(item, int | str) and not isinstance(item, bool) else ""
        if not (digits.isascii() and digits.isdigit()):
            raise _got(f"must hold {what} ids (whole numbers)", item)
        if len(digits) > MAX_ID_DIGITS:
            raise unknown(f"{digits[:MAX_ID_DIGITS]}...")
        number = int(digits)
        refused = problem(number)
        if refused is not None:
            raise refused
        ids.append(number)
    return tuple(sorted(set(ids)))


def _choices(value: object, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _got(f"must be a list of {what}", value)
    if not value:
        raise _Problem(f"choose at least one of {', '.join(allowed)}")
    chosen = []
    for item in value:
        if item not in allowed:
            raise _got(f"must each be one of {', '.join(allowed)}", item)
        chosen.append(item)
    return tuple(word for word in allowed if word in chosen)


def _headers(value: object, *, lint: bool = True) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _got('must be an object of header names and values, e.g. {"X-Token": "abc"}', value)
    if len(value) > MAX_HEADERS:
        raise _Problem(f"must be at most {MAX_HEADERS} headers, got {len(value)}")
    clean: dict[str, str] = {}
    for raw_name, raw_value in value.items():
        name = str(raw_name).strip()
        if not fields.is_token(name):
            raise _got(HEADER_NAME_RULE, raw_name)
        reason = FORBIDDEN_HEADERS.get(name.lower())
        if reason:
            raise _Problem(f"{name} {reason} and cannot be set")
        if name.lower() in (known.lower() for known in clean):
            raise _Problem(f"{name} is given twice")
        text = _string(raw_value, max_length=MAX_HEADER_VALUE)
        if any(ord(char) < 32 and char != "\t" for char in text):
            raise _got(f"the value of {name} must not contain line breaks or control characters", text)
        if lint:  # the preview shows these as findings instead
            _header_value(name, text)
        clean[name] = text
    return clean


def _header_value(name: str, text: str) -> None:
    unsendable = header_value_problem(name, text)
    if unsendable:
        raise _Problem(unsendable)
    errors = [f.message for f in macros.lint(text, macros.Context.HEADER) if f.severity == "error"]
    if errors:
        raise _Problem(f"the value of {name}: {' '.join(errors)}")


def header_value_problem(name: str, value: str) -> str | None:
    """Typed text the header cannot carry (`fields`): refused by saving, an error in the preview."""
    problem = fields.value_problem(value)
    return None if problem is None else f"the value of {name} {problem}"


def _status_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _got('must be an object of our status to your word, e.g. {"approved": "sale"}', value)
    clean: dict[str, str] = {}
    for status, word in value.items():
        if status not in STATUSES:
            raise _got(f"keys must be one of {', '.join(STATUSES)}", status)
        if word is None or (isinstance(word, str) and not word.strip()):
            continue  # no word: the status is sent as it is
        text = _string(word, max_length=MAX_WORD).strip()
        if any(ord(char) < 32 for char in text):
            raise _got(f"the word for {status} must not contain control characters", word)
        clean[status] = text
    return clean


def check_preview(
    values: Mapping[str, Any],
    *,
    own_source_ids: Collection[int],
    programs: Mapping[int, bool] | None = None,
) -> dict[str, Any]:
    """A draft for the preview: the values it expands, or `Invalid` naming every bad field.

    Each field sent is checked as saving checks it, with two differences: nothing is required (a draft may
    lack its URL or name), and what the templates say (URL, body, header values) is left to the preview's
    lint findings, which are what the preview is for; their type and length are checked here.
    """
    checker = _Checker(values)
    draft = {
        "url": checker.run("url", lambda v: _template(v, MAX_URL), ""),
        "method": checker.run("method", _method, "GET"),
        "body_template": checker.run("body_template", lambda v: _template(v, MAX_BODY), None),
        "content_type": checker.run(
            "content_type", lambda v: _content_type(v, values.get("body_template")), None
        ),
        "headers": checker.run("headers", lambda v: _headers(v, lint=False), {}),
        "status_map": checker.run("status_map", _status_map, {}),
    }
    # Not used by the preview, but a draft the API would refuse on saving is refused here too.
    checker.run("name", _name, None)
    checker.run("traffic_source_ids", lambda v: _sources(v, own_source_ids), None)
    checker.run("program_ids", lambda v: _programs(v, programs or {}), None)
    checker.run("events", lambda v: _choices(v, POSTBACK_EVENTS, "events"), None)
    checker.run("statuses", lambda v: _choices(v, STATUSES, "statuses"), None)
    checker.run("success_body_contains", _success_text, None)
    checker.run("active", _active, None)
    if checker.problems:
        raise Invalid(checker.problems)
    return draft


def _template(value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise _got("must be text", value)
    if len(value) > max_length:
        raise _Problem(f"must be at most {max_length} characters, got {len(value)}")
    return value


def _success_text(value: object) -> str | None:
    text = _string(value, max_length=200)
    if any(ord(char) < 32 for char in text):
        raise _got("must not contain control characters", text)
    return text if text.strip() else None


def _active(value: object) -> bool:
    if not isinstance(value, bool):
        raise _got("must be true or false", value)
    return value


def form_values(form: Any) -> dict[str, Any]:
    """The portal form (a MultiDict) in the API's shape, so both go through `check`."""
    names = form.getlist("header_name")
    header_values = form.getlist("header_value")
    headers = {
        name.strip(): value
        for name, value in zip(names, header_values, strict=False)
        if name.strip() or value.strip()
    }
    # Each scope is a radio (all, or only the boxes ticked), so unticking every box never means "all".
    all_sources = form.get("scope", "all") == "all"
    all_programs = form.get("program_scope", "all") == "all"
    return {
        "name": form.get("name", ""),
        "url": form.get("url", ""),
        "method": form.get("method", "GET"),
        "traffic_source_ids": [] if all_sources else form.getlist("traffic_source_ids"),
        "program_ids": [] if all_programs else form.getlist("program_ids"),
        "events": form.getlist("events"),
        "statuses": form.getlist("statuses"),
        "body_template": form.get("body_template", ""),
        "content_type": form.get("content_type", ""),
        "headers": headers,
        "status_map": {status: form.get(f"status_map.{status}", "") for status in STATUSES},
        "success_body_contains": form.get("success_body_contains", ""),
    }


def scope_problems(form: Any) -> dict[str, str]:
    """A form that says "only these" must tick at least one (the API's [] means all)."""
    problems = {}
    if form.get("scope", "all") != "all" and not form.getlist("traffic_source_ids"):
        problems["traffic_source_ids"] = "choose at least one traffic source, or all traffic sources"
    if form.get("program_scope", "all") != "all" and not form.getlist("program_ids"):
        problems["program_ids"] = "choose at least one program, or all programs"
    return problems
