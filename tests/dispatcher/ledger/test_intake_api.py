"""POST /api/v1/transactions: sales and leads come in; a refusal names the field and writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from dispatcher import accounts
from dispatcher.models import Advertiser, Delivery, Program, Transaction, TransactionEvent
from tests.dispatcher.ledger.conftest import Network


def count(network: Network, model: type[Any]) -> int:
    with network.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def nothing_written(network: Network) -> bool:
    return (count(network, Transaction), count(network, TransactionEvent), count(network, Delivery)) == (
        0,
        0,
        0,
    )


def test_a_reported_sale_is_201_with_its_sales_id_commission_and_deliveries(network: Network) -> None:
    network.postback()
    click_id = network.click(fobs="their-click")

    response = network.report({"click_id": click_id, "order_number": "A-1", "sale_amount": "249.90"})

    assert response.status_code == 201
    body = response.json
    assert body is not None
    assert set(body) == {"sales_id", "status", "commission", "currency", "deliveries"}
    assert body["status"] == "pending"
    assert body["commission"] == "24.99"
    assert body["currency"] == "USD"
    assert body["deliveries"] == 1
    with network.session() as session:
        sale = session.scalars(select(Transaction)).one()
        assert sale.sales_id == body["sales_id"]
        assert (sale.order_number, sale.sale_amount, sale.event_type) == ("A-1", Decimal("249.90"), "sale")
        assert sale.click is not None and sale.click.fobs == "their-click"
        assert (sale.publisher_id, sale.traffic_source_id) == (network.publisher_id, network.source_id)
        assert sale.channel == "api"
        [created] = sale.events
        assert (created.kind, created.status, created.channel) == ("created", "pending", "api")


def test_amounts_given_as_json_numbers_are_exact_decimals_never_floats(network: Network) -> None:
    click_id = network.click()
    raw = (
        b'{"click_id": "%s", "order_number": "N-1", "sale_amount": 0.3, "currency": "EUR"}'
        % click_id.encode()
    )

    response = network.client.post(
        "/api/v1/transactions",
        data=raw,
        content_type="application/json",
        headers={"Authorization": f"Bearer {network.api_key}"},
    )

    assert response.status_code == 201, response.json
    assert response.json is not None and response.json["commission"] == "0.03"
    with network.session() as session:
        assert session.scalars(select(Transaction.sale_amount)).one() == Decimal("0.30")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"event": "lead", "status": "approved"}, ("lead", "approved")),
        ({"event": "SALE", "status": "Pending"}, ("sale", "pending")),
        ({"currency": "eur"}, ("sale", "pending")),
    ],
)
def test_event_and_status_may_be_given(
    network: Network, fields: dict[str, str], expected: tuple[str, str]
) -> None:
    body = network.sale(**fields)

    with network.session() as session:
        sale = session.scalars(select(Transaction).where(Transaction.sales_id == body["sales_id"])).one()
        assert (sale.event_type, sale.status) == expected
        assert sale.currency == fields.get("currency", "USD").upper()


def test_the_event_time_is_kept_in_utc(network: Network) -> None:
    click_id = network.click()
    in_paris = (datetime.now(UTC) - timedelta(minutes=-1)).astimezone().replace(microsecond=0)
    body = {
        "click_id": click_id,
        "order_number": "T-1",
        "sale_amount": "1.00",
        "event_time": in_paris.isoformat(),
    }

    assert network.report(body).status_code == 201

    with network.session() as session:
        assert session.scalars(select(Transaction.event_time)).one() == in_paris.astimezone(UTC)


def test_an_event_time_within_the_clock_skew_is_accepted(network: Network) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()

    network.sale(event_time=soon)


def future(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"click_id": "no-such-click"}, "click_id", "is not a click of this network"),
        ({"click_id": "x" * 33}, "click_id", "must be at most 32 characters"),
        ({"sale_amount": "-1.00"}, "sale_amount", "must not be negative"),
        ({"sale_amount": -1}, "sale_amount", "must not be negative"),
        ({"sale_amount": "ten"}, "sale_amount", "must be a number like 19.99"),
        ({"sale_amount": "1,000.00"}, "sale_amount", "must be a number like 19.99"),
        ({"sale_amount": "NaN"}, "sale_amount", "must be a number like 19.99"),
        ({"sale_amount": "Infinity"}, "sale_amount", "must be a number like 19.99"),
        ({"sale_amount": True}, "sale_amount", "must be a number like 19.99"),
        ({"sale_amount": [1]}, "sale_amount", "must be a number like 19.99"),
        ({"sale_amount": None}, "sale_amount", "is required"),
        ({"sale_amount": "19.999"}, "sale_amount", "must have at most 2 decimals for USD"),
        ({"sale_amount": "1.5", "currency": "JPY"}, "sale_amount", "must have at most 0 decimals for JPY"),
        ({"sale_amount": "1.2345", "currency": "KWD"}, "sale_amount", "must have at most 3 decimals for KWD"),
        ({"sale_amount": "1e15"}, "sale_amount", "must be less than 1000000000000"),
        # 40 digits with a point: a number, too large (it was "must be a number like 19.99").
        ({"sale_amount": "9" * 38 + ".99"}, "sale_amount", "must be less than 1000000000000"),
        ({"sale_amount": "1" * 41}, "sale_amount", "must have at most 40 digits"),
        ({"sale_amount": "about " * 10}, "sale_amount", "must be a number like 19.99"),
        ({"sale_amount": "1." + "0" * 60}, "sale_amount", "must have at most 40 digits"),
        ({"currency": "XYZ"}, "currency", "must be an ISO 4217 currency code such as USD or EUR"),
        ({"currency": "US"}, "currency", "must be an ISO 4217 currency code such as USD or EUR"),
        ({"event": "click"}, "event", "must be one of sale, lead"),
        ({"status": "declined"}, "status", "must be one of pending, approved"),
        ({"event_time": lambda: future(10)}, "event_time", "must not be in the future"),  # when run
        ({"event_time": "yesterday"}, "event_time", "must be an ISO 8601 time"),
        ({"event_time": "2020-01-01T00:00:00Z"}, "event_time", "must not be before the click"),
        ({"order_number": "x" * 256}, "order_number", "must be at most 255 characters"),
        ({"order_number": ""}, "order_number", "is required"),
        ({"order_number": "A\n1"}, "order_number", "must not contain control characters"),
        ({"order_number": {"id": 1}}, "order_number", "must be text"),
        ({"commission": "5.00"}, "commission", "is not accepted: this program sets the commission"),
        ({"coupon": "X"}, "coupon", "is not a field"),
        ({"publisher_id": "me"}, "publisher_id", "must be a positive whole number"),
    ],
)
def test_a_bad_report_is_a_400_naming_the_field_and_writes_nothing(
    network: Network, fields: dict[str, Any], field: str, problem: str
) -> None:
    given = {name: value() if callable(value) else value for name, value in fields.items()}
    body = {"click_id": network.click(), "order_number": "A-1", "sale_amount": "10.00", **given}

    response = network.report(body)

    assert response.status_code == 400
    assert response.json is not None
    assert list(response.json["fields"]) == [field]
    assert response.json["fields"][field].startswith(problem)
    assert response.json["error"].startswith(f"{field}: {problem}")
    assert nothing_written(network)


def test_a_click_on_another_advertisers_program_is_refused(network: Network) -> None:
    with network.session() as session:
        rival = accounts.create_advertiser(session, "Rival")
        rival_program = accounts.create_program(
            session, rival.advertiser.id, "Rival", landing_url="https://rival.example/", commission="5%"
        ).id
    click_id = network.click(program_id=rival_program)

    response = network.report({"click_id": click_id, "order_number": "A-1", "sale_amount": "10.00"})

    assert response.status_code == 400
    assert response.json is not None
    assert response.json["fields"] == {"click_id": "is a click on another advertiser's program"}
    assert nothing_written(network)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'"a string"',
        b"null",
        b'{"sale_amount": NaN}',
        b'{"sale_amount": 1e999999}',
        b'{"sale_amount": 1e-999999}',
        b"\xff\xfe\x00",
        b"[" * 50000,
        b'{"click_id": 12, "order_number": 1, "sale_amount": 1}',
        b'{"click_id": null, "order_number": null, "sale_amount": null}',
    ],
)
def test_garbage_bodies_are_4xx_json_never_500(network: Network, raw: bytes) -> None:
    response = network.client.post(
        "/api/v1/transactions",
        data=raw,
        content_type="application/json",
        headers={"Authorization": f"Bearer {network.api_key}"},
    )

    assert 400 <= response.status_code < 500
    assert response.json is not None and set(response.json) == {"error", "fields"}
    assert nothing_written(network)


def test_an_oversize_body_is_413(network: Network) -> None:
    response = network.report({"click_id": "x", "order_number": "A", "sale_amount": "1", "pad": "x" * 70_000})

    assert response.status_code == 413
    assert response.json is not None and list(response.json["fields"]) == ["body"]  # named, as a 400 names it
    assert nothing_written(network)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer garbage",
        "Bearer adv_000000000000_not-the-secret",
        "Bearer WRONG_SECRET",
        "Bearer S2S_TOKEN",
        "Bearer INACTIVE",
    ],
)
def test_missing_or_bad_credentials_are_401_json(network: Network, authorization: str | None) -> None:
    if authorization == "Bearer WRONG_SECRET":
        authorization = "Bearer " + network.api_key.rsplit("_", 1)[0] + "_wrong"
    if authorization == "Bearer S2S_TOKEN":
        authorization = f"Bearer {network.s2s_token}"
    deactivated = authorization == "Bearer INACTIVE"
    if deactivated:
        authorization = f"Bearer {network.api_key}"
        with network.session() as session:
            session.execute(update(Advertiser).values(active=False))
    headers = {} if authorization is None else {"Authorization": authorization}

    response = network.client.post(
        "/api/v1/transactions", json={"order_number": "A", "sale_amount": "1"}, headers=headers
    )

    # The right key of a deactivated advertiser is refused saying so (dispatcher.account_admin).
    assert response.status_code == (403 if deactivated else 401)
    assert response.json is not None
    assert response.json["error"].startswith("Authorization: ")
    assert nothing_written(network)


def test_the_same_order_reported_again_is_200_with_the_original_and_no_new_delivery(network: Network) -> None:
    network.postback()
    first = network.report({"click_id": network.click(), "order_number": "A-1", "sale_amount": "100.00"})

    again = network.report({"click_id": network.click(), "order_number": "A-1", "sale_amount": "80.00"})

    assert first.status_code == 201 and again.status_code == 200
    assert again.json == {**(first.json or {}), "duplicate": True}
    assert count(network, Transaction) == 1
    assert count(network, Delivery) == 1


def test_the_same_order_as_a_lead_then_as_a_sale_are_two_transactions(network: Network) -> None:
    lead = network.sale(order_number="A-1", event="lead")
    sale = network.sale(order_number="A-1", event="sale")

    assert lead["sales_id"] != sale["sales_id"]
    assert count(network, Transaction) == 2


def test_a_duplicate_answers_the_current_status_of_the_original(network: Network) -> None:
    first = network.sale(order_number="A-1")
    assert network.change(first["sales_id"], {"status": "approved"}).status_code == 200

    again = network.report({"click_id": network.click(), "order_number": "A-1", "sale_amount": "100.00"})

    assert again.status_code == 200
    assert again.json is not None
    assert (again.json["status"], again.json["duplicate"]) == ("approved", True)


class TestClickless:
    """Without a click id, the advertiser names the publisher and source; only where the program allows it."""

    @pytest.fixture
    def clickless(self, network: Network) -> Network:
        with network.session() as session:
            session.execute(update(Program).values(allow_clickless=True))
        return network

    def body(self, network: Network, **fields: Any) -> dict[str, Any]:
        values = {
            "order_number": "OFF-1",
            "sale_amount": "50.00",
            "publisher_id": network.publisher_id,
            "traffic_source_id": network.other_source_id,
        }
        return {**values, **fields}

    def test_a_clickless_sale_is_credited_to_the_named_publisher_and_source(self, clickless: Network) -> None:
        response = clickless.report(self.body(clickless))

        assert response.status_code == 201, response.json
        with clickless.session() as session:
            sale = session.scalars(select(Transaction)).one()
            assert sale.click_pk is None
            assert (sale.publisher_id, sale.traffic_source_id) == (
                clickless.publisher_id,
                clickless.other_source_id,
            )

    @pytest.mark.parametrize(
        ("fields", "field", "problem"),
        [
            ({"publisher_id": None}, "publisher_id", "is required for a transaction without a click_id"),
            ({"traffic_source_id": None}, "traffic_source_id", "is required for a transaction without"),
            ({"traffic_source_id": 999999}, "traffic_source_id", "is not a traffic source of publisher"),
            ({"program_id": 999999}, "program_id", "is not an active program of this advertiser"),
        ],
    )
    def test_a_clickless_sale_must_name_a_real_publisher_and_source(
        self, clickless: Network, fields: dict[str, Any], field: str, problem: str
    ) -> None:
        response = clickless.report(self.body(clickless, **fields))

        assert response.status_code == 400
        assert response.json is not None
        assert response.json["fields"][field].startswith(problem)
        assert nothing_written(clickless)

    def test_a_program_that_does_not_allow_it_requires_a_click_id(self, network: Network) -> None:
        response = network.report(self.body(network))

        assert response.status_code == 400
        assert response.json is not None
        assert response.json["fields"] == {
            "click_id": f"is required: program {network.program_id} only accepts transactions with a click"
        }
        assert nothing_written(network)

    def test_an_advertiser_with_several_programs_must_name_the_program(self, clickless: Network) -> None:
        with clickless.session() as session:
            second = accounts.create_program(
                session,
                clickless.advertiser_id,
                "Shoes EU",
                landing_url="https://shop.example/eu",
                commission="5%",
                currency="EUR",
                allow_clickless=True,
            ).id

        unnamed = clickless.report(self.body(clickless))
        named = clickless.report(self.body(clickless, program_id=second))

        assert unnamed.status_code == 400
        assert unnamed.json is not None and "program_id" in unnamed.json["fields"]
        assert named.status_code == 201
        assert named.json is not None and named.json["currency"] == "EUR"


def test_a_refused_value_is_shown_as_json_says_it_not_as_python_would(network: Network) -> None:
    click = network.click()
    for raw, shown in (("true", "got true"), ("1e400", "got 1E+400"), ("[true, 1.5]", "got [true, 1.5]")):
        body = f'{{"click_id": "{click}", "order_number": "A-1", "sale_amount": {raw}}}'
        response = network.client.post(
            "/api/v1/transactions",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {network.api_key}"},
        )
        assert response.status_code == 400 and response.json is not None
        assert response.json["error"].endswith(shown), response.json
    assert nothing_written(network)
