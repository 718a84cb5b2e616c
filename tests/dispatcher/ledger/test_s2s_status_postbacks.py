"""An order sent as URLs only, created, approved and reversed: its status postbacks reach a real receiver,
sent by a real RQ worker, in the order of the events."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from dispatcher.models import Postback
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
