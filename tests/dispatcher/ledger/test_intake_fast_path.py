"""POST /api/v1/transactions is answered in front of Flask (dispatcher.web.fast_path): the same requests sent
through the middleware and straight to the Flask app get the same status, headers and body; a refusal
writes nothing and runs its SQL once (the view raises what the middleware met, it does not look again)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import request, request_started
from sqlalchemy import func, select
from werkzeug.test import Client, TestResponse

from dispatcher.db import get_db
from dispatcher.models import Delivery, Transaction, TransactionEvent
from dispatcher.web.access_log import AccessLog
from dispatcher.web.advertiser_api import MAX_JSON_BYTES
from dispatcher.web.fast_path import FAILURE_KEY, FastPath
from tests.dispatcher.ledger.conftest import Network, statements_run

PATH = "/api/v1/transactions"


@pytest.fixture
def flask_only(network: Network) -> Client:
    """A client of the Flask app itself, the fast path taken out from under the access log: the answer to
    compare with."""
    access = network.app.wsgi_app
    assert isinstance(access, AccessLog) and isinstance(access.app, FastPath)
    return Client(AccessLog(access.app.wsgi_app), TestResponse)


def post(client: Client, body: bytes, authorization: str | None, **options: Any) -> TestResponse:
    # One request id for every request: the access log echoes it, and the answers compare alike.
    headers = {"X-Request-ID": "same-id"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = client.post(PATH, data=body, headers=headers, content_type="application/json", **options)
    assert isinstance(response, TestResponse)
    return response


def sale(click_id: str, order: str, **fields: Any) -> bytes:
    return json.dumps(
        {"click_id": click_id, "order_number": order, "sale_amount": "19.99", **fields}
    ).encode()


def counts(network: Network) -> tuple[int, int, int]:
    with network.session() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Transaction, TransactionEvent, Delivery)
        )


def assert_alike(fast: TestResponse, flask: TestResponse) -> None:
    assert fast.status == flask.status
    assert sorted(fast.headers.to_wsgi_list()) == sorted(flask.headers.to_wsgi_list())
    assert fast.data == flask.data


def test_a_new_sale_and_its_duplicate_are_answered_as_flask_answers_them(
    network: Network, flask_only: Client
) -> None:
    network.postback()
    click_id = network.click()
    key = f"Bearer {network.api_key}"
    flask_saw: list[str] = []

    def seen_by_flask(_app: Any, **_extra: Any) -> None:
        flask_saw.append(request.path)

    with request_started.connected_to(seen_by_flask, network.app):
        fast = post(network.client, sale(click_id, "F-1"), key)
        flask = post(flask_only, sale(click_id, "K-1"), key)
        again = sale(click_id, "F-1")
        fast_again, flask_again = post(network.client, again, key), post(flask_only, again, key)

    assert fast.status == "201 CREATED"
    assert fast.headers["Vary"] == "Cookie"
    assert fast.headers["X-Frame-Options"] == "DENY"
    assert fast.headers["Content-Type"] == "application/json"
    first = fast.json
    assert first is not None and (first["commission"], first["deliveries"]) == ("2.00", 1)
    # Each new sale has its own sales id, of the same length: the rest of the answer is the same.
    ids = [response.json["sales_id"] for response in (fast, flask)]  # type: ignore[index]
    assert fast.data.replace(ids[0].encode(), ids[1].encode()) == flask.data
    assert sorted(fast.headers.to_wsgi_list()) == sorted(flask.headers.to_wsgi_list())
    # The same order again, each way: 200 with the original, the same body byte for byte.
    assert fast_again.status == "200 OK"
    assert_alike(fast_again, flask_again)
    assert counts(network) == (2, 2, 2)
    assert flask_saw == [PATH] * 2  # the middleware answered the others itself


def test_in_debug_mode_the_json_is_indented_as_jsonify_indents_it(
    network: Network, flask_only: Client
) -> None:
    network.app.debug = True
    click_id = network.click()
    key = f"Bearer {network.api_key}"
    post(flask_only, sale(click_id, "D-1"), key)

    fast = post(network.client, sale(click_id, "D-1"), key)

    assert fast.data.startswith(b'{\n  "commission": ')
    assert_alike(fast, post(flask_only, sale(click_id, "D-1"), key))


def _key(network: Network) -> str:
    return f"Bearer {network.api_key}"


def _bad_key(network: Network) -> str:
    return "Bearer " + network.api_key.rsplit("_", 1)[0] + "_wrong"


def _no_key(network: Network) -> None:
    return None


def _a_sale(**fields: Any) -> Callable[[Network], bytes]:
    return lambda network: sale(network.click(), "R-1", **fields)


_TOO_LARGE = b" " * (MAX_JSON_BYTES + 1)
# (name, body, Authorization header, status): every kind of refusal.
REFUSALS: list[tuple[str, Callable[[Network], bytes], Callable[[Network], str | None], int]] = [
    ("no key", _a_sale(), _no_key, 401),
    ("not bearer", _a_sale(), lambda n: "Basic dXNlcjpwYXNz", 401),
    ("bad key", _a_sale(), _bad_key, 401),
    ("s2s token as key", _a_sale(), lambda n: f"Bearer {n.s2s_token}", 401),
    ("bad key, bad json", lambda n: b'{"click_id": ', _bad_key, 401),
    ("bad json", lambda n: b'{"click_id": ', _key, 400),
    ("json not an object", lambda n: b"[1, 2]", _key, 400),
    ("empty body", lambda n: b"", _key, 400),
    ("unknown field", _a_sale(colour="red"), _key, 400),
    ("bad amount", _a_sale(sale_amount="-5"), _key, 400),
    ("missing order", lambda n: json.dumps({"click_id": n.click()}).encode(), _key, 400),
    ("unknown click", lambda n: sale("no-such-click", "R-1"), _key, 400),
    ("too large", lambda n: _TOO_LARGE, _key, 413),
    ("too large, no key", lambda n: _TOO_LARGE, _no_key, 401),
    ("too large, bad key", lambda n: _TOO_LARGE, _bad_key, 401),
]


@pytest.mark.parametrize(
    ("body", "authorization", "status"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_refusal_is_flasks_answer_writes_nothing_and_runs_its_sql_once(
    network: Network,
    flask_only: Client,
    body: Callable[[Network], bytes],
    authorization: Callable[[Network], str | None],
    status: int,
) -> None:
    network.postback()
    data, header = body(network), authorization(network)
    database = get_db(network.app)

    with statements_run(database) as through_middleware:
        fast = post(network.client, data, header)
    with statements_run(database) as straight_to_flask:
        flask = post(flask_only, data, header)

    assert fast.status_code == status, fast.data
    assert fast.json is not None and set(fast.json) == {"error", "fields"}
    assert_alike(fast, flask)
    assert through_middleware == straight_to_flask  # the view raised the refusal; it did not look again
    assert counts(network) == (0, 0, 0)


def test_a_body_longer_than_the_limit_without_content_length_is_413_and_not_read_to_the_end(
    network: Network, flask_only: Client
) -> None:
    """A chunked body has no Content-Length: it is read up to the limit and no further."""
    for client in (network.client, flask_only):
        body = io.BytesIO(b" " * (10 * MAX_JSON_BYTES))
        response = client.post(
            PATH,
            input_stream=body,
            headers={"Authorization": f"Bearer {network.api_key}", "Transfer-Encoding": "chunked"},
            content_type="application/json",
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert response.status_code == 413
        assert response.json == {
            "error": f"body: must be at most {MAX_JSON_BYTES} bytes",
            "fields": {"body": f"must be at most {MAX_JSON_BYTES} bytes"},
        }
        assert body.tell() <= MAX_JSON_BYTES + 1
    assert counts(network) == (0, 0, 0)


def test_a_chunked_body_within_the_limit_is_recorded(network: Network) -> None:
    data = sale(network.click(), "C-1")
    response = network.client.post(
        PATH,
        input_stream=io.BytesIO(data),
        headers={"Authorization": f"Bearer {network.api_key}", "Transfer-Encoding": "chunked"},
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == 201, response.data
    assert counts(network)[0] == 1


class _Upload(io.BytesIO):
    """A request body that notes how many pooled database connections are out while it is read."""

    def __init__(self, data: bytes, network: Network) -> None:
        super().__init__(data)
        self.pool = get_db(network.app).engine.pool
        self.checked_out: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.checked_out.append(self.pool.checkedout())  # type: ignore[attr-defined]
        return super().read(size)

    def readinto(self, buffer: Any, /) -> int:
        self.checked_out.append(self.pool.checkedout())  # type: ignore[attr-defined]
        return super().readinto(buffer)


def test_the_body_is_read_before_a_database_connection_is_taken(network: Network, flask_only: Client) -> None:
    click_id = network.click()
    for client, order in ((network.client, "U-1"), (flask_only, "U-2")):
        data = sale(click_id, order)
        upload = _Upload(data, network)
        response = client.post(
            PATH,
            input_stream=upload,
            content_length=len(data),
            headers={"Authorization": f"Bearer {network.api_key}"},
            content_type="application/json",
        )
        assert response.status_code == 201, response.data
        assert upload.checked_out and set(upload.checked_out) == {0}


def test_with_a_session_cookie_the_request_is_flasks_and_recorded_once(
    network: Network, flask_only: Client
) -> None:
    """Flask re-signs a permanent session cookie on every answer (Set-Cookie): a request with cookies is
    left to Flask, which answers it as it always did."""
    with network.client.session_transaction() as session:
        session["seen"] = 1
        session.permanent = True
    cookie = network.client.get_cookie("session")
    assert cookie is not None
    flask_only.set_cookie("session", cookie.value)
    click_id = network.click()
    key = f"Bearer {network.api_key}"

    fast = post(network.client, sale(click_id, "S-1"), key)
    flask = post(flask_only, sale(click_id, "S-1"), key)

    assert (fast.status_code, flask.status_code) == (201, 200)
    for response in (fast, flask):
        assert response.headers["Set-Cookie"].startswith("session=")
        assert response.headers["Vary"] == "Cookie"
    assert counts(network)[0] == 1


def test_requests_the_fast_path_does_not_take_reach_flask_untouched(network: Network) -> None:
    """Another method, or a path that is not the exact one, never meets the fast path's refusals."""
    assert network.client.delete(PATH).status_code == 405
    assert network.client.post(PATH + "/", headers={"Authorization": "Bearer x"}).status_code == 404
    assert network.client.put(PATH, headers={"Authorization": "Bearer x"}).status_code == 405


def test_a_failure_left_for_the_view_is_raised_by_it(network: Network, flask_only: Client) -> None:
    """The hand-over between middleware and view: the view raises what it is given, and does nothing else."""
    environ_failure = {FAILURE_KEY: LookupError("from the fast path")}
    network.app.testing = False  # the app's own 500 handling, not the test client's re-raise
    network.app.config["PROPAGATE_EXCEPTIONS"] = False
    click_id = network.click()
    response = flask_only.post(
        PATH,
        data=sale(click_id, "X-1"),
        headers={"Authorization": f"Bearer {network.api_key}"},
        content_type="application/json",
        environ_overrides=environ_failure,
    )

    assert response.status_code == 500
    assert response.json is not None and response.json["fields"] == {}
    assert counts(network) == (0, 0, 0)
