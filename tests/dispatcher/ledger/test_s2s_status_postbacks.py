"""Through a real RQ worker to a real receiver: an order sent as URLs only, created, approved and reversed,
reaches it in the order of the events; a clickless report's sub ids reach `#fobs#`..`#fobs5#`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import update

from dispatcher.models import Postback, Program
from tests.dispatcher.ledger.conftest import Network
from tests.workers.conftest import Receiver, work_burst, worker_env


def test_an_s2s_approval_then_reversal_reaches_the_publisher_in_order(
    network: Network, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    try:
        with network.session() as session:
            session.add(
                Postback(
                    publisher_id=network.publisher_id,
                    url_template=receiver.url(
                        "/pb?cid=#fobs#&event=#event#&status=#status#&payout=#ca#&tx=#txid#"
                    ),
                    events=["sale", "approved", "reversed"],
                )
            )
            session.commit()
        click = network.click(fobs="their-click-7")
        url = f"/s2s/transaction?token={network.s2s_token}&clickid={click}&on=URL-1&sa=120.00"

        answers = [
            network.client.get(url + status) for status in ("", "&status=approved", "&status=reversed")
        ]

        assert [answer.status_code for answer in answers] == [201, 200, 200]
        assert [(answer.json or {}).get("deliveries") for answer in answers] == [1, 1, 1]
        env = worker_env(database_url, redis_url, tmp_path)
        for _ in range(
            5
        ):  # a later event's delivery waits for the earlier one to settle: at most a burst each
            work_burst(env)
            if len(receiver.hits("/pb")) == 3:
                break
        sent = [parse_qs(urlsplit(hit.path).query) for hit in receiver.hits("/pb")]
        assert [(q["event"][0], q["status"][0]) for q in sent] == [
            ("sale", "pending"),
            ("approved", "approved"),
            ("reversed", "reversed"),
        ]
        assert {q["cid"][0] for q in sent} == {"their-click-7"}
        assert {q["payout"][0] for q in sent} == {"12.00"}
        assert len({q["tx"][0] for q in sent}) == 3  # each event is its own conversion for the receiver
    finally:
        receiver.close()


def test_a_clickless_reports_sub_ids_reach_the_postback_by_s2s_and_by_api(
    network: Network, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    try:
        with network.session() as session:
            session.execute(update(Program).values(allow_clickless=True))
            session.add(
                Postback(
                    publisher_id=network.publisher_id,
                    url_template=receiver.url("/pb?order=#on#&cid=#fobs#&s2=#fobs2#&s5=#fobs5#"),
                )
            )
            session.commit()
        who = {"publisher_id": network.publisher_id, "traffic_source_id": network.source_id}
        by_url = network.client.get(
            "/s2s/transaction",
            query_string={
                "secure": network.s2s_token,
                "on": "CL-1",
                "revenue": "30.00",
                "publisher": who["publisher_id"],
                "ts": who["traffic_source_id"],
                "external_transaction_id": "tracker-click-1",
                "sub_id": "sub-a",
                "fobs5": "five",
            },
        )
        by_api = network.report(
            {"order_number": "CL-2", "sale_amount": "30.00", "fobs": "tracker-click-2", **who}
        )

        assert (by_url.status_code, by_api.status_code) == (201, 201), (by_url.json, by_api.json)
        work_burst(worker_env(database_url, redis_url, tmp_path))
        sent = {
            q["order"][0]: (q["cid"][0], q.get("s2", [""])[0], q.get("s5", [""])[0])
            for q in (
                parse_qs(urlsplit(hit.path).query, keep_blank_values=True) for hit in receiver.hits("/pb")
            )
        }
        assert sent == {"CL-1": ("tracker-click-1", "sub-a", "five"), "CL-2": ("tracker-click-2", "", "")}
    finally:
        receiver.close()
