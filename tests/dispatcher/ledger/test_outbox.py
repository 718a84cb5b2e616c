"""The outbox: each event creates one pending delivery per matching postback, in the event's own transaction;
after commit they are handed to RQ, and when Redis is down they wait in the database for the pump."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from sqlalchemy import insert, select

from app import create_app
from dispatcher.db import get_db
from dispatcher.ledger import handoff
from dispatcher.ledger.outbox import create_deliveries, fired_event
from dispatcher.models import (
    Delivery,
    Postback,
    Transaction,
    TransactionEvent,
    postback_programs,
    postback_traffic_sources,
)
from dispatcher.models.base import Base
from dispatcher.queueing import FIRST_ATTEMPT_QUEUE, SEND_JOB
from dispatcher.redis_server import free_port
from tests.conftest import app_settings
from tests.dispatcher import factories
from tests.dispatcher.ledger.conftest import Network, build_network

ALL_EVENTS = ["sale", "lead", "approved", "declined", "reversed", "adjusted"]
LABELS = {
    ("S1", "created"): "sale",
    ("L1", "created"): "lead",
    ("S1", "approved"): "approved",
    ("S1", "adjusted"): "adjusted",
    ("S1", "reversed"): "reversed",
    ("S2", "created"): "sale2",
    ("S2", "declined"): "declined",
}


def run_the_script(network: Network) -> None:
    """Every kind of event, in order: S1 is a sale that is approved, adjusted and reversed; L1 a lead born
    approved; S2 a sale that is declined. All on the network's program and first traffic source."""
    s1 = network.sale(order_number="S1")["sales_id"]
    network.sale(order_number="L1", event="lead", status="approved")
    for change in ({"status": "approved"}, {"sale_amount": "90.00"}, {"status": "reversed"}):
        assert network.change(s1, change).status_code == 200
    s2 = network.sale(order_number="S2")["sales_id"]
    assert network.change(s2, {"status": "declined"}).status_code == 200


def fired_for(network: Network, postback_id: int) -> set[str]:
    with network.session() as session:
        rows = session.execute(
            select(Transaction.order_number, TransactionEvent.kind)
            .select_from(Delivery)
            .join(TransactionEvent, TransactionEvent.id == Delivery.transaction_event_id)
            .join(Transaction, Transaction.id == Delivery.transaction_id)
            .where(Delivery.postback_id == postback_id)
        ).all()
    return {LABELS[(row.order_number, row.kind)] for row in rows}


def scoped(network: Network, postback_id: int, table: Any, column: str, target: int) -> None:
    with network.session() as session:
        session.execute(insert(table).values({"postback_id": postback_id, column: target}))


@pytest.mark.parametrize(
    ("postback", "scope", "fires"),
    [
        ({}, None, {"sale", "lead", "sale2"}),
        ({"events": ALL_EVENTS}, None, set(LABELS.values())),
        ({"events": ["lead"]}, None, {"lead"}),
        ({"events": ["sale"]}, None, {"sale", "sale2"}),
        ({"events": ["approved", "declined"]}, None, {"approved", "declined"}),
        ({"events": ["reversed", "adjusted"]}, None, {"reversed", "adjusted"}),
        ({"events": ALL_EVENTS, "statuses": ["approved"]}, None, {"lead", "approved", "adjusted"}),
        ({"statuses": ["pending"]}, None, {"sale", "sale2"}),
        ({"events": ALL_EVENTS, "statuses": ["declined", "reversed"]}, None, {"declined", "reversed"}),
        ({"events": []}, None, set()),
        ({"statuses": []}, None, set()),
        ({}, ("source", "same"), {"sale", "lead", "sale2"}),
        ({}, ("source", "other"), set()),
        ({}, ("program", "same"), {"sale", "lead", "sale2"}),
        ({}, ("program", "other"), set()),
        ({"active": False}, None, set()),
        ({"deleted_at": datetime(2026, 1, 1, tzinfo=UTC)}, None, set()),
        ({"publisher": "another"}, None, set()),
    ],
)
def test_deliveries_are_created_exactly_for_the_postbacks_that_match(
    network: Network, postback: dict[str, Any], scope: tuple[str, str] | None, fires: set[str]
) -> None:
    fields = dict(postback)
    if fields.pop("publisher", None) == "another":
        with network.session() as session:
            hook = factories.postback(session, factories.publisher(session)).id
    else:
        hook = network.postback(**fields)
    if scope == ("source", "same"):
        scoped(network, hook, postback_traffic_sources, "traffic_source_id", network.source_id)
    if scope == ("source", "other"):
        scoped(network, hook, postback_traffic_sources, "traffic_source_id", network.other_source_id)
    if scope == ("program", "same"):
        scoped(network, hook, postback_programs, "program_id", network.program_id)
    if scope == ("program", "other"):
        with network.session() as session:
            elsewhere = factories.program(session).id
        scoped(network, hook, postback_programs, "program_id", elsewhere)

    run_the_script(network)

    assert fired_for(network, hook) == fires


def test_a_scope_of_several_sources_fires_for_any_of_them(network: Network) -> None:
    hook = network.postback()
    for source in (network.source_id, network.other_source_id):
        scoped(network, hook, postback_traffic_sources, "traffic_source_id", source)
    network.report(
        {"click_id": network.click(source_id=network.other_source_id), "order_number": "S1", "sale_amount": 1}
    )

    assert len(fired_for(network, hook)) == 1


def test_every_matching_postback_gets_its_own_pending_delivery(network: Network) -> None:
    hooks = {network.postback(), network.postback(), network.postback(events=["lead"])}
    before = datetime.now(UTC)

    body = network.sale(order_number="S1")

    assert body["deliveries"] == 2
    with network.session() as session:
        sale = session.scalars(select(Transaction)).one()
        deliveries = session.scalars(select(Delivery)).all()
        assert {d.postback_id for d in deliveries} < hooks
        for delivery in deliveries:
            assert delivery.state == "pending"
            assert delivery.attempt_count == 0
            assert (delivery.transaction_id, delivery.publisher_id) == (sale.id, network.publisher_id)
            assert delivery.transaction_event_id == sale.events[0].id
            assert delivery.next_attempt_at is not None
            assert before - timedelta(seconds=1) <= delivery.next_attempt_at <= datetime.now(UTC)


def test_new_deliveries_are_handed_to_rq_by_job_path_after_commit(
    network: Network, redis_client: redis.Redis
) -> None:
    network.postback()
    network.postback()

    network.sale()

    with network.session() as session:
        ids = sorted(session.scalars(select(Delivery.id)))
    assert handoff.drain(network.app)
    [job] = Queue(FIRST_ATTEMPT_QUEUE, connection=redis_client).get_jobs()
    assert job.func_name == SEND_JOB
    assert sorted(job.args[0]) == ids


def test_with_redis_stopped_the_sale_is_recorded_and_its_deliveries_wait_in_the_database(
    tmp_path: Path, database_url: str
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(app_settings(tmp_path, database_url, dead_redis))
    Base.metadata.create_all(get_db(app).engine)
    with get_db(app).session() as session:
        ids = build_network(app, session)
    network = Network(app=app, client=app.test_client(), **ids)
    hook = network.postback()

    response = network.report({"click_id": network.click(), "order_number": "R-1", "sale_amount": "10.00"})

    assert response.status_code == 201
    assert response.json is not None and response.json["deliveries"] == 1
    with network.session() as session:
        [delivery] = session.scalars(select(Delivery)).all()
        assert (delivery.postback_id, delivery.state) == (hook, "pending")
        assert session.scalars(select(Transaction.sales_id)).one() == response.json["sales_id"]
    get_db(app).dispose()


def test_backfill_can_reuse_the_outbox_for_one_postback_without_doubling(network: Network) -> None:
    network.sale(order_number="S1")
    network.sale(order_number="S2")
    late = network.postback()  # added after the sales: they fired nothing for it

    with network.session() as session:
        pairs = session.execute(select(Transaction, TransactionEvent).join(TransactionEvent)).all()
        events = [fired_event(sale, happened) for sale, happened in pairs]
        first = create_deliveries(session, events, postback_ids=[late], skip_existing=True)
        again = create_deliveries(session, events, postback_ids=[late], skip_existing=True)

    assert sum(len(ids) for ids in first.values()) == 2
    assert sum(len(ids) for ids in again.values()) == 0
    with network.session() as session:
        assert len(session.scalars(select(Delivery).where(Delivery.postback_id == late)).all()) == 2
        assert session.get_one(Postback, late).active
