"""Hypothesis on the publisher API's postback validators: `POST /api/v1/postbacks`,
`PUT /api/v1/postbacks/<id>` and `POST /api/v1/postbacks/preview`, with hostile URL templates (macros,
schemes, hosts, lengths), methods, other publishers' traffic sources, huge and negative ids, events,
statuses, status words, bodies, headers.

Properties: never a 5xx; a 400 is exactly `{"error": str, "fields": {str: str}}` naming the field; a refusal
writes no row and leaves a postback as it was; a saved postback reads back as answered, with a URL the
workers can send to and only the publisher's own traffic sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import example, given
from hypothesis import strategies as st

import macros
from dispatcher.web.publisher_api import FIELDS, SIGNING
from tests.portal.conftest import Account, add_source, make_publisher
from tests.security.fuzz_postbacks import FOREIGN, OWN, RELATED, mutations, resolve
from tests.security.fuzz_support import (
    Figures,
    assert_error_shape,
    assert_names_a_field,
    backend,
    fuzz_settings,
    json_body,
    json_values,
    row_counts,
    written,
)

FIGURES = Figures("postbacks")
GET_BASE = {"url": "https://tracker.example/pb?cid=#fobs#&amount=#sa#", "method": "GET"}
POST_BASE = {
    **GET_BASE,
    "method": "POST",
    "body_template": "cid=#fobs#&amount=#sa#",
    "content_type": "application/x-www-form-urlencoded",
}
PREVIEW_KEYS = {"method", "url", "body", "content_type", "ok", "findings", "url_marked", "body_marked"}
FINDING_KEYS = {"field", "severity", "code", "message", "start", "end"}


class Publishers:
    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app, self.client = app, client
        self.me = make_publisher(app)
        self.own = [add_source(app, self.me, "Blog"), add_source(app, self.me, "Newsletter")]
        other = make_publisher(app)
        self.foreign = [add_source(app, other, "Theirs")]

    def send(self, method: str, path: str, body: object, account: Account | None = None) -> Any:
        headers = {**(account or self.me).auth, "Content-Type": "application/json"}
        return self.client.open(path, method=method, data=json_body(body), headers=headers)

    def read(self, postback_id: int) -> dict[str, Any]:
        found = self.client.get(f"/api/v1/postbacks/{postback_id}", headers=self.me.auth)
        assert found.status_code == 200, found.get_data(as_text=True)
        body: dict[str, Any] = found.get_json()
        return body


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    print(FIGURES.report())


@pytest.fixture
def publishers(app: Flask, client: FlaskClient, database_url: str) -> Publishers:
    return Publishers(app, client)


BASES = {"GET": GET_BASE, "POST": POST_BASE}
bases = st.sampled_from(sorted(BASES))
unknown_keys = st.text(max_size=12).filter(lambda key: key not in (*FIELDS, SIGNING))


def _mutated(
    publishers: Publishers, base: str, mutation: tuple[str, Any], unknown_key: str
) -> tuple[str, dict[str, Any]]:
    """A valid GET or POST postback with one field replaced; returns the key it changed."""
    name, value = mutation
    key = unknown_key if name == "unknown" else name
    return key, {**BASES[base], key: resolve(value, publishers.own, publishers.foreign)}


def _check_saved(publishers: Publishers, answer: dict[str, Any], sent: dict[str, Any]) -> None:
    """A saved postback reads back as answered and is one the workers can send."""
    stored = publishers.read(answer["id"])
    assert stored == answer, (stored, answer)
    url = stored["url"]
    assert url == str(sent.get("url")).strip()
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.hostname, url
    assert parts.port is None or 0 < parts.port < 65536, url
    assert not [f for f in macros.lint(url) if f.severity == "error"], url
    assert set(stored["traffic_source_ids"]) <= set(publishers.own), stored["traffic_source_ids"]
    assert stored["method"] in ("GET", "POST") and (
        stored["method"] == "POST" or stored["body_template"] is None
    )
    for text in _strings(stored):
        text.encode("utf-8")  # storable and sendable: no lone surrogates


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@fuzz_settings
@given(base=bases, mutation=mutations, unknown_key=unknown_keys)
@example(base="GET", mutation=("traffic_source_ids", ["²"]), unknown_key="x")  # was a 500
@example(base="GET", mutation=("traffic_source_ids", ["1" * 5000]), unknown_key="x")  # was a 500
@example(base="GET", mutation=("traffic_source_ids", [OWN, FOREIGN]), unknown_key="x")
@example(base="POST", mutation=("name", "a\ud800"), unknown_key="x")  # was a 500
@example(base="GET", mutation=("url", "https://t.example:99999/?c=#fobs#"), unknown_key="x")
def test_a_near_valid_postback_is_saved_as_sent_or_refused_naming_the_field(
    publishers: Publishers, database_url: str, base: str, mutation: tuple[str, Any], unknown_key: str
) -> None:
    case = FIGURES.count("create_near_valid", backend(database_url))
    key, body = _mutated(publishers, base, mutation, unknown_key)
    before = row_counts(publishers.app)

    response = publishers.send("POST", "/api/v1/postbacks", body)

    after = row_counts(publishers.app)
    assert response.status_code in (201, 400), response.get_data(as_text=True)[:500]
    FIGURES.outcome(case, str(response.status_code))
    if response.status_code == 400:
        assert_names_a_field(assert_error_shape(response), {key, *RELATED.get(key, ()), "body"})
        assert written(before, after) == {}
        return
    answer = response.get_json()
    _check_saved(publishers, answer, body)
    sources = len(answer["traffic_source_ids"])
    assert written(before, after) == {
        "postbacks": 1,
        **({"postback_traffic_sources": sources} if sources else {}),
    }
    assert (answer["signing_secret"] is not None) == (body.get(SIGNING) is True)


@fuzz_settings
@given(base=bases, mutation=mutations, unknown_key=unknown_keys)
def test_a_near_valid_update_changes_the_postback_or_leaves_it_untouched(
    publishers: Publishers, database_url: str, base: str, mutation: tuple[str, Any], unknown_key: str
) -> None:
    case = FIGURES.count("update_near_valid", backend(database_url))
    created = publishers.send(
        "POST", "/api/v1/postbacks", {**POST_BASE, "traffic_source_ids": publishers.own[:1]}
    )
    assert created.status_code == 201, created.get_json()
    postback_id = created.get_json()["id"]
    key, body = _mutated(publishers, base, mutation, unknown_key)
    change = {key: body[key]}
    previous = publishers.read(postback_id)
    before = row_counts(publishers.app)

    response = publishers.send("PUT", f"/api/v1/postbacks/{postback_id}", change)

    after = row_counts(publishers.app)
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:500]
    FIGURES.outcome(case, str(response.status_code))
    if response.status_code == 400:
        assert_names_a_field(assert_error_shape(response), {key, *RELATED.get(key, ()), "body"})
        assert written(before, after) == {}
        assert publishers.read(postback_id) == previous
        return
    answer = response.get_json()
    _check_saved(publishers, answer, {"url": change.get("url", previous["url"])})
    assert set(written(before, after)) <= {"postback_traffic_sources"}


@fuzz_settings
@given(base=bases, mutation=mutations, unknown_key=unknown_keys)
@example(base="GET", mutation=("url", "https://t.example/?c=#fobs#&t=#et:%Y\ud800#"), unknown_key="x")
@example(base="GET", mutation=("status_map", {"approved": True}), unknown_key="x")  # was a 500
def test_a_preview_never_fails_and_writes_nothing(
    publishers: Publishers, database_url: str, base: str, mutation: tuple[str, Any], unknown_key: str
) -> None:
    case = FIGURES.count("preview_near_valid", backend(database_url))
    key, body = _mutated(publishers, base, mutation, unknown_key)
    before = row_counts(publishers.app)

    response = publishers.send("POST", "/api/v1/postbacks/preview", body)

    assert written(before, row_counts(publishers.app)) == {}
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:500]
    FIGURES.outcome(case, str(response.status_code))
    if response.status_code == 400:
        assert_names_a_field(assert_error_shape(response), {key, *RELATED.get(key, ()), "body"})
        return
    answer = response.get_json()
    assert set(answer) == PREVIEW_KEYS, answer
    assert all(set(finding) == FINDING_KEYS for finding in answer["findings"]), answer
    errors = [finding for finding in answer["findings"] if finding["severity"] == "error"]
    assert answer["ok"] is (not errors)
    if answer["url"] is not None:
        assert not [f for f in errors if f["field"] == "url"], answer
        assert answer["url_marked"] is None, answer
    # While a template has errors: what would be sent, in pieces, each error's message on its part.
    messages = {f["message"] for f in errors}
    for side in ("url_marked", "body_marked"):
        for piece in answer[side] or ():
            assert set(piece) == {"text", "problem"} and isinstance(piece["text"], str), answer
            assert piece["problem"] is None or piece["problem"] in messages, answer


@fuzz_settings
@given(
    body=json_values() | st.dictionaries(st.sampled_from([*FIELDS, SIGNING, "x"]), json_values(), max_size=8)
)
@example(body=[])
@example(body="not an object")
@example(body={"url": "https://t.example/?c=#fobs#", "status_map": {"approved": True}})
def test_any_json_body_gets_a_clean_answer_everywhere(
    publishers: Publishers, database_url: str, body: object
) -> None:
    FIGURES.count("any_body", backend(database_url))
    created = publishers.send("POST", "/api/v1/postbacks", GET_BASE)
    mine = f"/api/v1/postbacks/{created.get_json()['id']}"
    for method, path in (("POST", "/api/v1/postbacks"), ("POST", "/api/v1/postbacks/preview"), ("PUT", mine)):
        previous = publishers.read(created.get_json()["id"])
        before = row_counts(publishers.app)

        response = publishers.send(method, path, body)

        assert response.status_code in (200, 201, 400), (path, body, response.get_data(as_text=True)[:500])
        if response.status_code == 400:
            fields = assert_error_shape(response)
            if isinstance(body, dict):
                assert_names_a_field(fields, {*body, "url"})
            else:  # a non-object body is named "body", as the advertiser API names it
                assert list(fields) == ["body"], fields
            assert written(before, row_counts(publishers.app)) == {}
            assert publishers.read(created.get_json()["id"]) == previous
