"""The network the authorization matrix runs against: two publishers (A and B), two advertisers (X, whose
key the matrix's advertiser holds, and Y), support and admin staff, each with real credentials.

Every private value of A and B is a marker that can be searched for in a response body: unique strings
(postback URL, names, sub ids, click and sales ids, emails, signing secrets, receivers' answers) and row ids
far from anything the app numbers itself (so "3200000029" in a page can only be B's postback). A's sale is
in X's program (the advertiser's own), B's in Y's (another advertiser's).

Spares: routes that change an object's state (delete, pause, resume, replay, secret) get a fresh object of
the same owner per case, so one role's allowed action never changes what the next role is tried on.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher import accounts, postback_pausing
from dispatcher.advertiser import bulk as advertiser_bulk
from dispatcher.advertiser import uploads
from dispatcher.broker import get_broker
from dispatcher.db import get_db
from dispatcher.models import (
    Attempt,
    AuditEntry,
    Click,
    Delivery,
    Postback,
    Publisher,
    StaffUser,
    TrafficSource,
    Transaction,
    TransactionEvent,
)
from dispatcher.portal import postbacks as portal_postbacks
from dispatcher.portal import tokens
from dispatcher.staff_auth import issue_token as issue_staff_token

PASSWORD = "correct-horse-battery"
OWNERS = ("A", "B")
# Ids far above anything the app hands out, one range per table and owner: a hit cannot be a coincidence.
IDS = {
    "A": {"postback": 3100000017, "source": 4100000019, "delivery": 5100000023, "transaction": 6100000031},
    "B": {"postback": 3200000029, "source": 4200000037, "delivery": 5200000041, "transaction": 6200000043},
}
_spare_ids = itertools.count(1)


@dataclass
class Party:
    """One publisher's objects and the markers that must never reach anyone else."""

    owner: str
    publisher_id: int
    email: str
    token: str
    postback_id: int
    source_id: int
    delivery_id: int
    transaction_id: int
    program_id: int
    sales_id: str
    click_id: str
    markers: dict[str, str] = field(default_factory=dict)  # kind -> value


@dataclass
class Staff:
    role: str
    id: int
    email: str
    token: str


@dataclass
class Network:
    tag: str
    receiver_url: str
    parties: dict[str, Party]
    advertiser_id: int
    api_key: str
    s2s_token: str
    other_api_key: str
    other_s2s_token: str
    staff: dict[str, Staff]
    advertiser_user_email: str  # X's advertiser portal login (the matrix's advertiser signs in with it)
    advertiser_bulk_ids: dict[str, int]  # "own": X's bulk status change, "other": Y's
    upload_ids: dict[str, str]  # "own": X's CSV upload results, "other": Y's
    bulk_entry_id: int  # an admin's bulk replay (its status page)
    pause_entry_id: int  # a support pause: an audit entry that is not a bulk replay
    hashes: list[str]  # password and token hashes: nobody ever sees one

    def party(self, owner: str) -> Party:
        return self.parties[owner]


def build(app: Flask, receiver_url: str) -> Network:
    tag = uuid.uuid4().hex[:8]
    with get_db(app).session() as session:
        advertiser = accounts.create_advertiser(session, f"Advertiser X {tag}")
        other = accounts.create_advertiser(session, f"Advertiser Y {tag}")
        programs = {
            "A": accounts.create_program(
                session,
                advertiser.advertiser.id,
                "Shoes",
                landing_url="https://shoes.example/",
                commission="10%",
            ),
            "B": accounts.create_program(
                session, other.advertiser.id, "Hats", landing_url="https://hats.example/", commission="10%"
            ),
        }
        parties = {owner: _party(session, owner, tag, programs[owner].id, receiver_url) for owner in OWNERS}
        staff = {}
        for role in ("support", "admin"):
            member = accounts.create_staff(session, f"{role}-{tag}@staff.test", PASSWORD, role)
            staff[role] = Staff(role, member.id, member.email, issue_staff_token(member))
        entries = [
            AuditEntry(
                staff_user_id=staff["admin"].id,
                action="bulk_replay",
                target_type="replay_job",
                target_id=f"replay-{tag}",
                detail={
                    "filter": {"since": "2026-01-01T00:00:00+00:00", "postback_id": parties["A"].postback_id},
                    "total": 1,
                    "started_at": datetime.now(UTC).isoformat(),
                },
            ),
            AuditEntry(
                staff_user_id=staff["support"].id,
                action="pause",
                target_type="postback",
                target_id=str(parties["B"].postback_id),
                detail={"reason": "receiver down"},
            ),
        ]
        portal_user = accounts.create_advertiser_user(
            session, advertiser.advertiser.id, f"adv-{tag}@shop.test", PASSWORD
        )
        bulk_changes = {
            key: AuditEntry(
                action=advertiser_bulk.ACTION,
                target_type=advertiser_bulk.TARGET_TYPE,
                target_id=str(owner.advertiser.id),
                detail={"status": "approved", "filter": {}, "total": 1, "up_to_id": 1, "started_at": "x"},
            )
            for key, owner in (("own", advertiser), ("other", other))
        }
        session.add_all([*entries, *bulk_changes.values()])
        session.flush()
        upload_ids = {key: uploads.new_upload_id() for key in ("own", "other")}
        for key, owner in (("own", advertiser), ("other", other)):
            row = uploads.LineResult(2, "recorded", parties["A" if key == "own" else "B"].sales_id)
            uploads.keep(get_broker(app).client(), owner.advertiser.id, upload_ids[key], [row])
        hashes = [row.password_hash for row in session.scalars(select(Publisher))]
        hashes += [row.api_token_hash or "" for row in session.scalars(select(Publisher))]
        hashes += [row.password_hash for row in session.scalars(select(StaffUser))]
        hashes += [row.api_token_hash or "" for row in session.scalars(select(StaffUser))]
        hashes.append(portal_user.password_hash)
        network = Network(
            tag=tag,
            receiver_url=receiver_url,
            parties=parties,
            advertiser_id=advertiser.advertiser.id,
            api_key=advertiser.api_key,
            s2s_token=advertiser.s2s_token,
            other_api_key=other.api_key,
            other_s2s_token=other.s2s_token,
            staff=staff,
            advertiser_user_email=portal_user.email,
            advertiser_bulk_ids={key: entry.id for key, entry in bulk_changes.items()},
            upload_ids=upload_ids,
            bulk_entry_id=entries[0].id,
            pause_entry_id=entries[1].id,
            hashes=[value for value in hashes if value],
        )
        session.commit()
    return network


def _party(session: Session, owner: str, tag: str, program_id: int, receiver_url: str) -> Party:
    low = owner.lower()
    ids = IDS[owner]
    created = accounts.create_publisher(
        session, f"Publisher {owner} {tag}", f"pub-{low}-{tag}@pub.test", PASSWORD
    )
    publisher_id = created.publisher.id
    source_row_id = ids["source"]
    session.add(TrafficSource(id=source_row_id, publisher_id=publisher_id, name=f"site-{low}-{tag}"))
    session.flush()
    hook_url = f"{receiver_url}/hook-{low}-{tag}?cid=#fobs#&sale=#flx_salesid#"
    postback = Postback(
        id=ids["postback"],
        publisher_id=publisher_id,
        name=f"tracker-{low}-{tag}",
        url_template=hook_url,
    )
    portal_postbacks.set_signing(postback, True)
    session.add(postback)
    session.flush()
    click = Click(
        click_id=f"clk-{low}-{tag}",
        program_id=program_id,
        publisher_id=publisher_id,
        traffic_source_id=source_row_id,
        fobs=f"sub-{low}-{tag}",
    )
    session.add(click)
    session.flush()
    sale = Transaction(
        id=ids["transaction"],
        sales_id=f"sale-{low}-{tag}",
        program_id=program_id,
        click_pk=click.id,
        publisher_id=publisher_id,
        traffic_source_id=source_row_id,
        order_number=f"order-{low}-{tag}",
        sale_amount=Decimal("120.00"),
        commission=Decimal("12.00"),
        currency="USD",
        event_time=datetime.now(UTC) - timedelta(hours=3),
    )
    session.add(sale)
    session.flush()
    event = TransactionEvent(
        transaction_id=sale.id,
        kind="created",
        status=sale.status or "pending",
        sale_amount=sale.sale_amount,
        commission=sale.commission,
        channel="api",
        occurred_at=sale.event_time,
    )
    session.add(event)
    session.flush()
    _failed_delivery(session, postback, event, ids["delivery"], f"reply-{low}-{tag}")
    session.flush()
    return Party(
        owner=owner,
        publisher_id=publisher_id,
        email=created.publisher.email,
        token=created.api_token,
        postback_id=postback.id,
        source_id=source_row_id,
        delivery_id=ids["delivery"],
        transaction_id=sale.id,
        program_id=program_id,
        sales_id=sale.sales_id,
        click_id=click.click_id,
        markers={
            "email": created.publisher.email,
            "postback url": f"hook-{low}-{tag}",
            "postback name": postback.name,
            "signing secret": postback.signing_secret or "",
            "source name": f"site-{low}-{tag}",
            "sub id": f"sub-{low}-{tag}",
            "click id": click.click_id,
            "sales id": sale.sales_id,
            "order number": sale.order_number,
            "receiver answer": f"reply-{low}-{tag}",
            "postback id": str(postback.id),
            "source id": str(source_row_id),
            "delivery id": str(ids["delivery"]),
            "transaction id": str(sale.id),
        },
    )


def _failed_delivery(
    session: Session, postback: Postback, event: TransactionEvent, delivery_id: int | None, answer: str
) -> Delivery:
    done = datetime.now(UTC) - timedelta(hours=1)
    url = postback.url_template.replace("#fobs#", "x").replace("#flx_salesid#", "y")
    delivery = Delivery(
        postback_id=postback.id,
        transaction_event_id=event.id,
        transaction_id=event.transaction_id,
        publisher_id=postback.publisher_id,
        state="failed",
        attempt_count=1,
        destination_host="127.0.0.1",
        last_status_code=500,
        last_error_class="http_status",
        last_error="HTTP 500",
        next_attempt_at=None,
        queued_at=None,
        completed_at=done,
    )
    if delivery_id is not None:
        delivery.id = delivery_id
    session.add(delivery)
    session.flush()
    session.add(
        Attempt(
            delivery_id=delivery.id,
            number=1,
            outcome="failed",
            started_at=done,
            duration_ms=12,
            method="GET",
            url=url,
            resolved_ip="127.0.0.1",
            status_code=500,
            response_headers={"Content-Type": "text/plain"},
            response_excerpt=answer,
            error_class="http_status",
            error_message="HTTP 500",
        )
    )
    return delivery


def spare_postback(app: Flask, network: Network, owner: str, *, active: bool = True) -> int:
    """A new live postback of `owner` (with the owner's URL marker), active or paused."""
    party = network.party(owner)
    with get_db(app).session() as session:
        postback = Postback(
            publisher_id=party.publisher_id,
            name=f"spare-{next(_spare_ids)}",
            url_template=f"{network.receiver_url}/{party.markers['postback url']}/spare?cid=#fobs#",
        )
        postback_pausing.set_active(postback, active, "Paused for the matrix")
        session.add(postback)
        session.commit()
        return postback.id


def spare_delivery(app: Flask, network: Network, owner: str) -> int:
    """A new failed (so replayable) delivery of `owner`'s shared postback, for a new event of its sale."""
    party = network.party(owner)
    with get_db(app).session() as session:
        postback = session.get(Postback, party.postback_id)
        sale = session.get(Transaction, party.transaction_id)
        assert postback is not None and sale is not None
        event = TransactionEvent(
            transaction_id=sale.id,
            kind="adjusted",
            status=sale.status,
            sale_amount=sale.sale_amount,
            commission=sale.commission,
            channel="api",
            occurred_at=datetime.now(UTC),
        )
        session.add(event)
        session.flush()
        delivery = _failed_delivery(session, postback, event, None, party.markers["receiver answer"])
        session.commit()
        return delivery.id


def new_publisher_token(app: Flask, publisher_id: int) -> str:
    with get_db(app).session() as session:
        publisher = session.get(Publisher, publisher_id)
        assert publisher is not None
        token = tokens.issue_token(publisher)
        session.commit()
        return token


def new_staff_token(app: Flask, staff_id: int) -> str:
    with get_db(app).session() as session:
        member = session.get(StaffUser, staff_id)
        assert member is not None
        token = issue_staff_token(member)
        session.commit()
        return token


def spare_publisher(app: Flask, network: Network) -> tuple[int, int]:
    """A new publisher with one traffic source, for the administration rows that change an account (its
    token, password, status): the matrix's own publishers must keep working."""
    number = next(_spare_ids)
    with get_db(app).session() as session:
        created = accounts.create_publisher(
            session, f"Spare {number}", f"spare-{number}-{network.tag}@pub.test", PASSWORD
        )
        source = accounts.create_traffic_source(session, created.publisher.id, "Spare site")
        session.commit()
        return created.publisher.id, source.id


def spare_advertiser(app: Flask) -> int:
    with get_db(app).session() as session:
        created = accounts.create_advertiser(session, f"Spare advertiser {next(_spare_ids)}")
        session.commit()
        return created.advertiser.id


def spare_program(app: Flask, network: Network) -> int:
    with get_db(app).session() as session:
        program = accounts.create_program(
            session,
            network.advertiser_id,
            f"Spare program {next(_spare_ids)}",
            landing_url="https://spare.example/",
            commission="5%",
        )
        session.commit()
        return program.id


def spare_staff(app: Flask, network: Network) -> int:
    with get_db(app).session() as session:
        member = accounts.create_staff(
            session, f"spare-{next(_spare_ids)}-{network.tag}@staff.test", PASSWORD
        )
        session.commit()
        return member.id
