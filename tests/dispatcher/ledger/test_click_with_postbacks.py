"""One reported sale with a click reads the click, its program and its publisher's live postbacks in one
statement (`attribute_with_postbacks`, the API's and S2S's hot path): it must give exactly what the two
reads of a batch give (`attribute`, then `active_postbacks`), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from dispatcher.db import get_db
from dispatcher.ledger.attribution import attribute, attribute_with_postbacks
from dispatcher.ledger.outbox import active_postbacks
from dispatcher.ledger.reports import SaleReport, check
from dispatcher.models import postback_programs, postback_traffic_sources
from dispatcher.validation import FieldError
from tests.dispatcher import factories
from tests.dispatcher.ledger.conftest import Network


def _both_ways(network: Network, click_id: str) -> tuple[Any, Any]:
    report = check(SaleReport(click_id=click_id, order_number="A-1", sale_amount="10.00"))
    with get_db(network.app).connect() as link:
        one_read = attribute_with_postbacks(link, network.advertiser_id, report)
        (attribution,) = attribute(link, network.advertiser_id, [report])
        two_reads = (
            attribution,
            active_postbacks(link, {network.publisher_id}) if not isinstance(attribution, FieldError) else [],
        )
        link.commit()
    return one_read, two_reads


def _scope(network: Network, table: Any, rows: list[dict[str, int]]) -> None:
    with network.session() as session:
        session.execute(insert(table), rows)


def test_the_click_and_every_live_postback_with_its_scopes(network: Network) -> None:
    plain = network.postback()
    scoped = network.postback(events=["sale", "approved"], statuses=["pending"])
    _scope(
        network,
        postback_traffic_sources,
        [
            {"postback_id": scoped, "traffic_source_id": source}
            for source in (network.source_id, network.other_source_id)
        ],
    )
    with network.session() as session:
        other_program = factories.program(session).id
    _scope(
        network,
        postback_programs,
        [{"postback_id": scoped, "program_id": p} for p in (network.program_id, other_program)],
    )
    network.postback(active=False)
    network.postback(deleted_at=datetime(2026, 1, 1, tzinfo=UTC))
    with network.session() as session:
        factories.postback(session, factories.publisher(session))  # another publisher's

    one_read, two_reads = _both_ways(network, network.click())

    (attribution, postbacks), (expected_attribution, expected_postbacks) = one_read, two_reads

    assert attribution == expected_attribution
    assert attribution.click_pk is not None and attribution.click_time is not None
    assert postbacks == sorted(expected_postbacks, key=lambda hook: hook.id)
    assert [hook.id for hook in postbacks] == sorted([plain, scoped])
    by_id = {hook.id: hook for hook in postbacks}
    assert by_id[scoped].traffic_source_ids == {network.source_id, network.other_source_id}
    assert by_id[scoped].program_ids == {network.program_id, other_program}
    assert by_id[scoped].events == {"sale", "approved"} and by_id[scoped].statuses == {"pending"}
    assert by_id[plain].traffic_source_ids == by_id[plain].program_ids == frozenset()


def test_a_publisher_without_postbacks(network: Network) -> None:
    (attribution, postbacks), (expected, _) = _both_ways(network, network.click())

    assert attribution == expected
    assert postbacks == []


def test_an_unknown_click_is_the_same_error(network: Network) -> None:
    network.postback()

    (error, postbacks), (expected, _) = _both_ways(network, "no-such-click")

    assert isinstance(error, FieldError) and isinstance(expected, FieldError)
    assert (error.field, error.value, error.problem) == (expected.field, expected.value, expected.problem)
    assert postbacks == []


def test_a_click_on_another_advertisers_program_is_the_same_error(network: Network) -> None:
    network.postback()
    with network.session() as session:
        elsewhere = factories.program(session).id
    click_id = network.click(program_id=elsewhere)

    (error, postbacks), (expected, _) = _both_ways(network, click_id)

    assert isinstance(error, FieldError) and isinstance(expected, FieldError)
    assert (error.field, error.value, error.problem) == (expected.field, expected.value, expected.problem)
    assert "another advertiser" in error.problem
    assert postbacks == []
