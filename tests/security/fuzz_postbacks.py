"""The publisher side of the validator fuzz tests: hostile URL templates and postback fields."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

import macros
from dispatcher.models.ledger import TransactionStatus
from dispatcher.models.postbacks import POSTBACK_EVENTS
from tests.security.fuzz_support import ANY_CHARS, HOSTILE_STRINGS, json_values

STATUSES = [status.value for status in TransactionStatus]
MACRO_NAMES = [spec.name for spec in macros.CATALOG]
MODIFIERS = [
    "iso",
    "unix",
    "date",
    "cents",
    "0",
    "3",
    "8",
    "9",
    "lower",
    "upper",
    "b64",
    "raw",
    "%Y-%m-%d %H:%M:%S",
    "%s",
    "%Q",
    "%Y\ud800",
    "%Y\U0001f600",
    "%Y\x7f",
    "",
    "x" * 50,
]
SCHEMES = ["https", "http", "HTTPS", "ftp", "javascript", "file", "gopher", "data", ""]
HOSTS = [
    "tracker.example",
    "t.example:8443",
    "t.example:0",
    "t.example:99999",
    "t.example:-1",
    "t.example:8o",
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f.1",
    "0177.0.0.1",
    "localhost",
    "LOCALHOST.",
    "a.localhost",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[64:ff9b::a00:1]",
    "[2002:7f00:1::]",
    "[fe80::1%25eth0]",
    "[::1",
    "10.0.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "a@127.0.0.1",
    "user:pass@tracker.example",
    "#fobs#.example",
    "tracker.example:#sa#",
    "xn--bcher-kva.example",
    "bücher.example",
    "",
]


def _macro() -> st.SearchStrategy[str]:
    known = st.tuples(st.sampled_from(MACRO_NAMES), st.none() | st.sampled_from(MODIFIERS)).map(
        lambda pair: f"#{pair[0]}#" if pair[1] is None else f"#{pair[0]}:{pair[1]}#"
    )
    foreign = st.sampled_from(
        [
            "{clickid}",
            "{aff_sub}",
            "#s2#",
            "#price#",
            "REPLACE",
            "!!!clickRef!!!",
            "#FOBS#",
            "#fobs",
            "#nope#",
        ]
    )
    return known | foreign


def _piece() -> st.SearchStrategy[str]:
    return (
        _macro()
        | st.text(ANY_CHARS, max_size=8)
        | st.sampled_from(["&", "=", "?", "/", "#", "%", "%00", " "])
    )


url_templates = st.one_of(
    st.builds(
        lambda scheme, host, path, query: f"{scheme}://{host}/{path}?{query}",
        st.sampled_from(SCHEMES),
        st.sampled_from(HOSTS),
        st.lists(_piece(), max_size=4).map("".join),
        st.lists(_piece(), max_size=6).map("".join),
    ),
    st.builds(
        lambda host, n: f"https://{host}/?cid=#fobs#&pad={'a' * n}",
        st.sampled_from(HOSTS[:2]),
        st.sampled_from([2000, 2040, 4100, 9000]),
    ),
    st.text(ANY_CHARS, max_size=60),
    st.sampled_from(HOSTILE_STRINGS),
)
body_templates = st.one_of(
    st.builds(
        lambda pieces: "{" + ", ".join(f'"k{i}": {p}' for i, p in enumerate(pieces)) + "}",
        st.lists(_macro() | st.just('"#fobs#"') | st.just("#sa#"), max_size=4),
    ),
    st.lists(_piece(), max_size=6).map("".join),
    st.sampled_from(['{"cid": "#fobs#"', "[#sa#]", "cid=#fobs#&sa=#sa:cents#", "\x00", "a" * 9000]),
)
ids = st.one_of(
    st.integers(-(2**70), 2**70), st.text(max_size=6), st.sampled_from(["²", "١", "1" * 5000, " 1 ", "-1"])
)


# Stand-ins for ids only known once the publishers exist: `resolve` puts the real ids in.
OWN, FOREIGN = "<own traffic source>", "<another publisher's traffic source>"


def resolve(value: object, own: list[int], foreign: list[int]) -> object:
    if isinstance(value, list):
        return [own[0] if item == OWN else foreign[0] if item == FOREIGN else item for item in value]
    return value


# For each field: valid, nearly valid and wrongly typed values.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "url": url_templates | json_values(),
    "method": st.sampled_from(["GET", "POST", "get", " post ", "PUT", "DELETE", "G\x00ET", ""])
    | json_values(),
    "name": st.text(ANY_CHARS, max_size=210) | json_values(),
    "traffic_source_ids": st.lists(st.sampled_from([OWN, FOREIGN]) | ids, max_size=4) | json_values(),
    "events": st.lists(st.sampled_from([*POSTBACK_EVENTS, "SALE", "click", ""]), max_size=4) | json_values(),
    "statuses": st.lists(st.sampled_from([*STATUSES, "paid", "Approved"]), max_size=4) | json_values(),
    "status_map": st.dictionaries(
        st.sampled_from([*STATUSES, "paid", ""]), st.text(ANY_CHARS, max_size=110) | json_values(), max_size=4
    )
    | json_values(),
    "body_template": body_templates | json_values(),
    "content_type": st.sampled_from(
        [
            "application/json",
            "APPLICATION/JSON",
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
            "x" * 101,
        ]
    )
    | json_values(),
    "headers": st.dictionaries(
        st.sampled_from(["X-Token", "Host", "Content-Length", "X Bad", "X:y", "", "x" * 80, "X-\u00e9"]),
        st.text(ANY_CHARS, max_size=30) | _macro() | json_values(),
        max_size=4,
    )
    | json_values(),
    "success_body_contains": st.text(ANY_CHARS, max_size=210) | json_values(),
    "active": st.booleans() | json_values(),
    "signing_secret": st.booleans() | json_values(),
    "unknown": json_values(),  # under a key that is not a field
}
mutations = st.sampled_from(sorted(FIELD_VALUES)).flatmap(
    lambda name: st.tuples(st.just(name), FIELD_VALUES[name])
)


# A field may be fine on its own and clash with another (a JSON content type with a form body).
RELATED = {"content_type": {"body_template"}, "method": {"body_template"}}
