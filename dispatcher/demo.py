"""The development demo: seed data for `make run`, and the receiver its postback points at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher import accounts
from dispatcher.models import DemoReceipt, Postback, Publisher

DEMO_PASSWORD = "demo-password"
DEMO_PUBLISHER_EMAIL = "publisher@demo.test"
DEMO_STAFF_EMAIL = "support@demo.test"
DEMO_ADVERTISER_EMAIL = "advertiser@demo.test"
# The FlexOffers-style template a publisher would register, aimed at this app's own demo receiver.
DEMO_POSTBACK_PATH = (
    "/demo/receiver?sid=#fobs#&order=#on#&amount=#sa#&commission=#ca#&status=#status#&date=#et#"
)
# The demo's postback fires on a sale or lead and on each later change, so that README's walk-through (a sale,
# then its approval) shows both reaching the receiver, with the status each one carries.
DEMO_POSTBACK_EVENTS = ["sale", "lead", "approved", "declined", "reversed", "adjusted"]


@dataclass(frozen=True)
class DemoSeed:
    seeded: bool
    details: dict[str, Any]


def seed(session: Session, base_url: str) -> DemoSeed:
    """Fill an empty database with a small demo network; a database with any publisher is left alone."""
    if session.scalar(select(Publisher.id).limit(1)) is not None:
        return DemoSeed(False, {"reason": "the database already has publishers; nothing seeded"})
    base = base_url.rstrip("/")
    advertiser = accounts.create_advertiser(session, "Demo Shop")
    program = accounts.create_program(
        session,
        advertiser.advertiser.id,
        "Demo Shop US",
        landing_url=f"{base}/demo/landing?clickid={{clickid}}",
        commission="10%",
        currency="USD",
    )
    publisher = accounts.create_publisher(session, "Demo Publisher", DEMO_PUBLISHER_EMAIL, DEMO_PASSWORD)
    blog = accounts.create_traffic_source(session, publisher.publisher.id, "Blog")
    newsletter = accounts.create_traffic_source(session, publisher.publisher.id, "Newsletter")
    postback = Postback(
        publisher_id=publisher.publisher.id,
        name="Demo receiver",
        url_template=base + DEMO_POSTBACK_PATH,
        events=list(DEMO_POSTBACK_EVENTS),
    )
    session.add(postback)
    staff = accounts.create_staff(session, DEMO_STAFF_EMAIL, DEMO_PASSWORD)
    shop_user = accounts.create_advertiser_user(
        session, advertiser.advertiser.id, DEMO_ADVERTISER_EMAIL, DEMO_PASSWORD
    )
    session.flush()
    return DemoSeed(
        True,
        {
            "advertiser": {
                "id": advertiser.advertiser.id,
                "api_key": advertiser.api_key,
                "s2s_token": advertiser.s2s_token,
                "user": {"id": shop_user.id, "email": DEMO_ADVERTISER_EMAIL, "password": DEMO_PASSWORD},
            },
            "program": {"id": program.id},
            "publisher": {
                "id": publisher.publisher.id,
                "email": DEMO_PUBLISHER_EMAIL,
                "password": DEMO_PASSWORD,
                "api_token": publisher.api_token,
                "traffic_sources": [blog.id, newsletter.id],
            },
            "postback": {"id": postback.id, "url": postback.url_template},
            "staff": {"id": staff.id, "email": DEMO_STAFF_EMAIL, "password": DEMO_PASSWORD},
        },
    )


def record_receipt(session: Session, method: str, path: str, query: dict[str, Any], body: str | None) -> int:
    receipt = DemoReceipt(method=method, path=path, query=query, body=body)
    session.add(receipt)
    session.flush()
    return receipt.id


def recent_receipts(session: Session, limit: int = 50) -> list[DemoReceipt]:
    return list(session.scalars(select(DemoReceipt).order_by(DemoReceipt.id.desc()).limit(limit)))
