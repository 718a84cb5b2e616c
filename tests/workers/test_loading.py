"""What a job loads to send: a postback read unchanged is reused from an earlier batch, a changed one
never."""

from __future__ import annotations

from sqlalchemy import update

from dispatcher.db import Database
from dispatcher.models import Postback
from tests.workers.conftest import make_delivery
from workers import loading


def _loaded(database: Database, delivery_id: int) -> Postback:
    with database.session() as session:
        (claimed,) = loading.load(session, {delivery_id: 1})
        return claimed.postback


def test_a_postback_read_unchanged_is_built_once_and_an_edited_one_again(database: Database) -> None:
    delivery_id, postback_id = make_delivery(database, "http://127.0.0.1:9/pb?o=#on#")
    first = _loaded(database, delivery_id)

    assert _loaded(database, delivery_id) is first  # the same row: the object built for the last batch

    with database.session() as session:
        session.execute(
            update(Postback).where(Postback.id == postback_id).values(url_template="http://127.0.0.1:9/v2")
        )
    edited = _loaded(database, delivery_id)
    assert edited is not first
    assert edited.url_template == "http://127.0.0.1:9/v2"
    assert first.url_template == "http://127.0.0.1:9/pb?o=#on#"  # what an earlier batch sends is untouched

    with database.session() as session:
        session.execute(update(Postback).where(Postback.id == postback_id).values(active=False))
    with database.session() as session:
        (claimed,) = loading.load(session, {delivery_id: 1})
    assert not claimed.sendable  # deactivated meanwhile: seen at the next batch
