"""The small network the intake and latency benches report sales on: one advertiser with a program, one
publisher with a traffic source and one postback, and one click to report sales against."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class SeededNetwork:
    api_key: str
    program_id: int
    publisher_id: int
    source_id: int
    click_id: str


def seed_network(session: Session, name: str, postback_url: str) -> SeededNetwork:
    """Made through the app's own account code; the click is written as the click route would."""
    from dispatcher import accounts
    from dispatcher.ledger.ids import new_click_id
    from dispatcher.models import Click, Postback

    shop = accounts.create_advertiser(session, f"{name} Shop")
    program = accounts.create_program(
        session, shop.advertiser.id, name, landing_url="https://shop.example/", commission="10%"
    )
    media = accounts.create_publisher(
        session, f"{name} Media", f"{name.lower()}@example.test", "long-password"
    )
    source = accounts.create_traffic_source(session, media.publisher.id, "Blog")
    session.add(Postback(publisher_id=media.publisher.id, url_template=postback_url))
    click_id = new_click_id()
    session.add(
        Click(
            click_id=click_id,
            program_id=program.id,
            publisher_id=media.publisher.id,
            traffic_source_id=source.id,
            fobs=name.lower(),
        )
    )
    return SeededNetwork(shop.api_key, program.id, media.publisher.id, source.id, click_id)
