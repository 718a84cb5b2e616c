"""A delivery still pending when its publisher is deactivated is not sent: the worker closes it as paused,
saying why (dispatcher.account_admin pauses the publisher's postbacks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatcher import account_admin
from dispatcher.db import Database
from dispatcher.models import Postback
from tests.workers.conftest import Receiver, attempt_rows, delivery_row, make_delivery, make_engine, send_now
from workers.engine import Engine


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    running = make_engine(database)
    yield running
    running.close()


def test_a_pending_delivery_of_a_deactivated_publisher_is_closed_unsent(
    database: Database, engine: Engine, receiver: Receiver
) -> None:
    delivery_id, postback_id = make_delivery(database, receiver.url("/pb"))
    with database.session() as session:
        publisher_id = session.get_one(Postback, postback_id).publisher_id
        account_admin.set_publisher_active(session, publisher_id, False)

    send_now(engine, delivery_id)

    row = delivery_row(database, delivery_id)
    assert (row.state, row.last_error_class, row.attempt_count) == ("failed", "paused", 0)
    assert account_admin.PAUSED_WITH_PUBLISHER in (row.last_error or "")
    assert receiver.hits("/pb") == [] and attempt_rows(database, delivery_id) == []
