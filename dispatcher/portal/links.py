"""Tracking links: the programs a publisher may promote, and the `/c/<program>` link for a traffic source and
sub ids, with where a visitor lands.

Every running program is open to every publisher (see `programs`). The link carries the publisher (`pub`), the
traffic source (`ts`: a click without one is refused, so a link is only built for one of the publisher's
active sources, the oldest unless one is asked for) and the publisher's own sub ids (`fobs`..`fobs5`,
echoed back in postbacks as `#fobs#`..`#fobs5#`); the click answers 302 to the program's landing URL with
the network's click id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from dispatcher.ledger import fields
from dispatcher.ledger.clicks import SUB_ID_NAMES, with_click_id
from dispatcher.ledger.fields import minor_unit
from dispatcher.models import Advertiser, Program, TrafficSource
from dispatcher.models.ledger import SUB_ID_LENGTH
from dispatcher.models.parties import CommissionType
from dispatcher.validation import FieldError, positive_id

# Shown where the network's click id will go, in the preview of the landing URL.
CLICK_ID_SAMPLE = "NETWORK_CLICK_ID"


@dataclass(frozen=True)
class Promotable:
    id: int
    name: str
    advertiser: str
    commission: str  # "10%" or "5.00 USD" per sale
    currency: str
    landing_url: str

    @property
    def lands_on(self) -> str:
        """The landing URL as a visitor reaches it, the click id in its place."""
        return with_click_id(self.landing_url, CLICK_ID_SAMPLE)


@dataclass(frozen=True)
class LinkSpec:
    program_id: int | None = None
    traffic_source_id: int | None = None
    sub_ids: tuple[tuple[str, str], ...] = ()  # only those given, in fobs..fobs5 order

    def query(self, publisher_id: int) -> dict[str, str]:
        """The tracking link's query parameters."""
        params = {"pub": str(publisher_id)}
        if self.traffic_source_id is not None:
            params["ts"] = str(self.traffic_source_id)
        params.update(self.sub_ids)
        return params


def _commission(kind: str, value: Decimal, currency: str) -> str:
    if kind == CommissionType.PERCENT.value:
        return f"{value.normalize():f}%"
    return f"{value.quantize(minor_unit(currency))} {currency}"


def promotable(session: Session) -> list[Promotable]:
    """Running programs (they and their advertiser active), by name."""
    query = (
        select(
            Program.id,
            Program.name,
            Advertiser.name,
            Program.commission_type,
            Program.commission_value,
            Program.currency,
            Program.landing_url,
        )
        .join(Advertiser, Advertiser.id == Program.advertiser_id)
        .where(and_(Program.active, Advertiser.active))
        .order_by(Program.name, Program.id)
    )
    return [
        Promotable(row[0], row[1], row[2], _commission(row[3], row[4], row[5]), row[5], row[6])
        for row in session.execute(query)
    ]


def parse_spec(
    args: Mapping[str, str], sources: Sequence[TrafficSource], programs: list[Promotable]
) -> LinkSpec:
    """What the builder asks for, `sources` being the publisher's (`traffic_sources.list_sources`: the caller
    reads them once); a program that is not running, another's traffic source, or a sub id a click would
    refuse raises `FieldError` naming it."""
    raw_program = (args.get("program_id") or "").strip()
    program_id = positive_id("program_id", raw_program) if raw_program else None
    if program_id is not None and program_id not in {program.id for program in programs}:
        raise FieldError("program_id", raw_program, "is not a running program")
    raw_source = (args.get("traffic_source_id") or "").strip()
    source_id = positive_id("traffic_source_id", raw_source) if raw_source else default_source(sources)
    source = next((source for source in sources if source.id == source_id), None)
    if source_id is not None and source is None:
        raise FieldError("traffic_source_id", raw_source, "is not one of your traffic sources")
    if source is not None and not source.active:
        raise FieldError("traffic_source_id", raw_source, "is deactivated: its clicks are refused")
    sub_ids = []
    for name in SUB_ID_NAMES:
        # The click's own check (`ledger.clicks`): what the builder takes, the link's click takes too.
        value = fields.optional_text(name, args.get(name), max_length=SUB_ID_LENGTH)
        if value is not None:
            sub_ids.append((name, value))
    return LinkSpec(program_id, source_id, tuple(sub_ids))


def default_source(sources: Sequence[TrafficSource]) -> int | None:
    """The traffic source a link carries when none is asked for: the oldest active one of the publisher's
    `sources` (by id, so that a rename or a new source never changes the links already handed out), None when
    the publisher has none and no link can be built."""
    return min((source.id for source in sources if source.active), default=None)
