"""POST /api/v1/transactions, Flask's to answer (the click alone is answered in front of it): a sale and its
duplicate, every kind of refusal (nothing written), the body's limits, read before a connection is taken."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.test import Client, TestResponse

from dispatcher.db import get_db
from dispatcher.models import Delivery, Transaction, TransactionEvent
from dispatcher.web.advertiser_api import MAX_JSON_BYTES
from dispatcher.web.fast_path import FastPath
from tests.dispatcher.ledger.conftest import Network, statements_run

PATH = "/api/v1/transactions"


def post(client: Client, body: bytes, authorization: str | None, **options: Any) -> TestResponse:
    headers = {} if authorization is None else {"Authorization": authorization}
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


def test_a_new_sale_and_its_duplicate_are_answered_by_flask(network: Network) -> None:
    network.postback()
    click_id = network.click()
    key = f"Bearer {network.api_key}"
    report = {"REQUEST_METHOD": "POST", "PATH_INFO": PATH}
    assert not [route for route in _fast_routes(network) if route.match(report) is not None]

    first = post(network.client, sale(click_id, "F-1"), key)
    again = post(network.client, sale(click_id, "F-1"), key)

    assert first.status == "201 CREATED"
    assert first.headers["X-Frame-Options"] == "DENY"
    assert first.headers["Content-Type"] == "application/json"
    body = first.json
    assert body is not None and (body["commission"], body["deliveries"]) == ("2.00", 1)
    assert again.status == "200 OK"
    assert again.json == {**body, "deliveries": 1, "duplicate": True}
    assert counts(network) == (1, 1, 1)


def _fast_routes(network: Network) -> list[Any]:
    middleware = network.app.wsgi_app
    while not isinstance(middleware, FastPath):  # beneath ProxyFix
        middleware = middleware.app  # type: ignore[attr-defined]
    return middleware.routes


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
def test_a_refusal_writes_nothing(
    network: Network,
    body: Callable[[Network], bytes],
    authorization: Callable[[Network], str | None],
    status: int,
) -> None:
    network.postback()
    data, header = body(network), authorization(network)
    database = get_db(network.app)

    with statements_run(database) as statements:
        answer = post(network.client, data, header)

    assert answer.status_code == status, answer.data
    assert answer.json is not None and set(answer.json) == {"error", "fields"}
    assert not [sql for sql in statements if sql.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert counts(network) == (0, 0, 0)


def test_a_body_longer_than_the_limit_without_content_length_is_413_and_not_read_to_the_end(
    network: Network,
) -> None:
    """A chunked body has no Content-Length: it is read up to the limit and no further."""
    for client in (network.client,):
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


def test_the_body_is_read_before_a_database_connection_is_taken(network: Network) -> None:
    click_id = network.click()
    for client, order in ((network.client, "U-1"),):
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


def test_other_methods_and_paths_are_refused_as_such(network: Network) -> None:
    assert network.client.delete(PATH).status_code == 405
    assert network.client.post(PATH + "/", headers={"Authorization": "Bearer x"}).status_code == 404
    assert network.client.put(PATH, headers={"Authorization": "Bearer x"}).status_code == 405
