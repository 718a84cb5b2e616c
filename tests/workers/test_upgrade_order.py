"""Migration 0010 drops columns the release before it reads, so this release starts before it runs (README,
Rolling upgrade): this code must send, settle and show deliveries on the 0009 schema."""

from __future__ import annotations

from dispatcher import delivery_details, migrate
from dispatcher.db import Database
from dispatcher.models import Delivery
from tests.workers.conftest import Receiver, attempt_rows, delivery_row, make_delivery, make_engine, send_now


def test_this_release_sends_and_settles_on_the_schema_before_0010(
    empty_database_url: str, receiver: Receiver
) -> None:
    migrate.upgrade(empty_database_url, "0009")
    database = Database(empty_database_url)
    engine = make_engine(database)
    try:
        delivery_id, _ = make_delivery(database, receiver.url("/pb?cid=#fobs#"))
        send_now(engine, delivery_id)

        assert [hit.path for hit in receiver.hits("/pb")] == ["/pb?cid=trk-1"]
        assert (delivery_row(database, delivery_id).state, len(attempt_rows(database, delivery_id))) == (
            "succeeded",
            1,
        )
        with database.session() as session:
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            shown = delivery_details.delivery_json(delivery, delivery_details.last_request(delivery))
        assert shown["url"] == receiver.url("/pb?cid=trk-1")
    finally:
        engine.close()
        database.dispose()
