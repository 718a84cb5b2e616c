"""A reported sale's key and its click read in one statement (`dispatcher.web.sale_reports`), on SQLite and
PostgreSQL: the same attribution, postbacks and refusals as reading them apart, in the same order."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.accounts import ADVERTISER_KEY_KIND, S2S_TOKEN_KIND
from dispatcher.auth import Beside, advertiser_beside
from dispatcher.db import get_db
from dispatcher.ledger.attribution import ClickRead, attribute_with_postbacks
from dispatcher.ledger.reports import CheckedReport, SaleReport
from dispatcher.models import Advertiser
from dispatcher.validation import FieldError
from dispatcher.web.sale_reports import _CLICK_BESIDE_TOKEN, advertiser_and_report
from tests.dispatcher import factories
from tests.dispatcher.ledger.conftest import Network, statements_run


def selects(statements: list[str]) -> list[str]:
    return [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]


def s2s(network: Network, **query: str) -> Any:
    return network.client.get("/s2s/transaction", query_string={"token": network.s2s_token, **query})


def test_a_reported_sale_with_a_click_reads_once_before_it_writes(network: Network) -> None:
    network.postback()
    click_id = network.click()
    database = get_db(network.app)

    with statements_run(database) as statements:
        answer = network.report({"click_id": click_id, "order_number": "R-1", "sale_amount": "10.00"})

    assert answer.status_code == 201 and answer.json is not None and answer.json["deliveries"] == 1
    [read] = selects(statements)
    assert "advertisers" in read and "clicks" in read and "postbacks" in read
    # Then the transaction, its event and its delivery, in the same database transaction as the read.
    words = [sql.split()[0].upper() for sql in statements]
    assert [word for word in words if word not in ("BEGIN", "COMMIT")] == ["SELECT", *["INSERT"] * 3]
    assert words.count("BEGIN") <= 1 and words.count("COMMIT") <= 1  # SQLite's (psycopg's are not seen)


def test_an_s2s_sale_with_a_click_reads_once_before_it_writes(network: Network) -> None:
    network.postback()
    click_id = network.click()
    database = get_db(network.app)

    with statements_run(database) as statements:
        answer = s2s(network, clickid=click_id, on="S-1", sa="10.00")

    assert answer.status_code == 201 and answer.json is not None and answer.json["deliveries"] == 1
    assert len(selects(statements)) == 1


def _attributed(network: Network, click_id: str) -> tuple[Any, Any]:
    """The attribution and postbacks from the read beside the key, and from the click's own read."""
    sale = SaleReport(click_id=click_id, order_number="A-1", sale_amount="10.00")
    with get_db(network.app).connect() as link:
        advertiser, report, read = advertiser_and_report(link, network.api_key, ADVERTISER_KEY_KIND, sale)
        assert advertiser.id == network.advertiser_id
        assert isinstance(report, CheckedReport) and read is not None and read.click_id == click_id
        beside = attribute_with_postbacks(link, advertiser.id, report, read)
        alone = attribute_with_postbacks(link, advertiser.id, report)
        link.commit()
    return beside, alone


def test_beside_the_key_the_click_and_its_postbacks_are_what_its_own_read_gives(network: Network) -> None:
    hooks = sorted([network.postback(), network.postback(events=["sale"], statuses=["pending"])])
    network.postback(active=False)

    (attribution, postbacks), (expected, expected_postbacks) = _attributed(network, network.click())

    assert attribution == expected and not isinstance(attribution, FieldError)
    assert postbacks == expected_postbacks and [hook.id for hook in postbacks] == hooks


@pytest.mark.parametrize("case", ["unknown", "another advertiser's", "no postbacks"])
def test_beside_the_key_every_other_click_is_answered_alike(network: Network, case: str) -> None:
    if case == "unknown":
        click_id = "no-such-click"
    elif case == "another advertiser's":
        with network.session() as session:
            elsewhere = factories.program(session).id
        click_id = network.click(program_id=elsewhere)
    else:
        click_id = network.click()

    (beside, postbacks), (alone, _) = _attributed(network, click_id)

    if isinstance(alone, FieldError):
        assert isinstance(beside, FieldError)
        assert (beside.field, beside.value, beside.problem) == (alone.field, alone.value, alone.problem)
    else:
        assert beside == alone
    assert postbacks == []


@pytest.mark.parametrize("kind", [ADVERTISER_KEY_KIND, S2S_TOKEN_KIND])
def test_a_wrong_secret_gets_no_rows_however_good_its_key_id(network: Network, kind: str) -> None:
    token = network.api_key if kind == ADVERTISER_KEY_KIND else network.s2s_token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    beside = Beside(_CLICK_BESIDE_TOKEN[kind], {"click_id": network.click()})
    with get_db(network.app).connect() as link:
        assert advertiser_beside(link, forged, kind, beside) == (None, [])
        identity, rows = advertiser_beside(link, token, kind, beside)
        link.commit()
    assert identity is not None and identity.id == network.advertiser_id and len(rows) == 1


def test_a_bad_key_is_refused_before_anything_is_said_about_the_report(network: Network) -> None:
    click_id = network.click()
    bad_key = network.api_key[:-4] + "AAAA"
    good_sale = {"click_id": click_id, "order_number": "K-1", "sale_amount": "10.00"}
    bad_sale = {**good_sale, "sale_amount": "-1"}

    for body in (good_sale, bad_sale, {"click_id": 7}):
        answer = network.report(body, api_key=bad_key)
        assert answer.status_code == 401 and answer.json is not None
        assert "the API key is not valid" in answer.json["error"]
    with network.session() as session:
        session.get_one(Advertiser, network.advertiser_id).active = False
    answer = network.report(good_sale)
    # The right key of a deactivated advertiser: refused all the same, saying why (account_admin).
    assert answer.status_code == 403 and answer.json is not None
    assert "deactivated" in answer.json["error"]


def test_a_malformed_report_with_a_good_key_is_refused_on_its_field(network: Network) -> None:
    answer = network.report({"click_id": network.click(), "order_number": "M-1", "sale_amount": "-1"})

    assert answer.status_code == 400 and answer.json is not None
    assert list(answer.json["fields"]) == ["sale_amount"]


def test_a_read_of_another_click_is_not_taken_for_the_reports(network: Network) -> None:
    first, second = network.click(), network.click()

    def read_for(click_id: str) -> tuple[CheckedReport, ClickRead]:
        sale = SaleReport(click_id=click_id, order_number="O-1", sale_amount="10.00")
        _, report, read = advertiser_and_report(link, network.api_key, ADVERTISER_KEY_KIND, sale)
        assert isinstance(report, CheckedReport) and read is not None
        return report, read

    with get_db(network.app).connect() as link:
        _, read_of_first = read_for(first)
        report, read_of_second = read_for(second)
        taken, _ = attribute_with_postbacks(link, network.advertiser_id, report, read_of_second)
        not_taken, _ = attribute_with_postbacks(link, network.advertiser_id, report, read_of_first)
        link.commit()

    assert not isinstance(taken, FieldError) and not isinstance(not_taken, FieldError)
    assert taken.click_pk == not_taken.click_pk  # the second click's, read afresh
    assert read_of_first.rows[0].id != taken.click_pk
