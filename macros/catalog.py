"""The macro catalog: the single source for the portal's palette, the README table and previews."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

Kind = Literal["text", "money", "time", "int"]


@dataclass(frozen=True, slots=True)
class MacroSpec:
    name: str
    description: str
    sample: object
    attribute: str
    kind: Kind = "text"
    aliases: tuple[str, ...] = ()
    default_modifier: str | None = None

    @property
    def token(self) -> str:
        return f"#{self.name}#"


def _fobs(n: int) -> MacroSpec:
    suffix = "" if n == 1 else str(n)
    return MacroSpec(
        name=f"fobs{suffix}",
        description=f"Sub-tracking value `fobs{suffix}` the publisher put on the click"
        + (" (usually the tracker's click ID)" if n == 1 else ""),
        sample="cl1ck-4f2a" if n == 1 else f"sub{n}",
        attribute=f"click.fobs{suffix}",
    )


CATALOG: tuple[MacroSpec, ...] = (
    *(_fobs(n) for n in range(1, 6)),
    MacroSpec("on", "Order number reported by the advertiser", "ORD-10045", "transaction.order_number"),
    MacroSpec(
        "sa", "Sale amount", Decimal("125.00"), "transaction.sale_amount", "money", default_modifier="2"
    ),
    MacroSpec(
        "ca",
        "Commission earned by the publisher",
        Decimal("12.50"),
        "transaction.commission",
        "money",
        default_modifier="2",
    ),
    MacroSpec("clickid", "The network's click ID", "Qm9vZ2xlLWNsaWNrLWlk", "click.click_id"),
    MacroSpec(
        "flx_salesid",
        "The network's sales (transaction) ID",
        "k3Fz9QbX2LmN0pRs",
        "transaction.sales_id",
        aliases=("salesid",),
    ),
    MacroSpec(
        "et",
        "Time of the transaction event, UTC",
        datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC),
        "transaction_event.occurred_at",
        "time",
        default_modifier="iso",
    ),
    MacroSpec("programid", "The advertiser program ID", 1042, "program.id", "int"),
    MacroSpec(
        "status",
        "Transaction status, after this postback's status map",
        "approved",
        "postback.status_map[transaction.status]",
    ),
    MacroSpec(
        "event",
        "What fired this postback: sale or lead (the first report), or the later change: approved, declined, "
        "reversed, adjusted (the words a postback subscribes to; #status# is the status it left)",
        "sale",
        "the event's trigger",
    ),
    MacroSpec("currency", "ISO 4217 currency of the amounts", "USD", "transaction.currency"),
    MacroSpec("programname", "The advertiser program name", "Acme Shoes US", "program.name"),
    MacroSpec("advertiserid", "The advertiser ID", 311, "advertiser.id", "int"),
    MacroSpec("publisherid", "The publisher ID", 7788, "publisher.id", "int"),
    MacroSpec("tsid", "The traffic source ID of the click", 55, "traffic_source.id", "int"),
    MacroSpec(
        "txid",
        "Stable ID of the transaction event (same on every retry), for receivers' de-duplication",
        "k3Fz9QbX2LmN0pRs-2",
        "transaction.sales_id + transaction_event.id",
    ),
    MacroSpec(
        "deliveryid",
        "ID of this delivery (one postback call, shared by its retries)",
        900123,
        "delivery.id",
        "int",
    ),
    MacroSpec("attempt", "Attempt number of this delivery, 1 for the first try", 1, "attempt.number", "int"),
    MacroSpec(
        "ts",
        "Time of sending this attempt, unix seconds",
        1714567200,
        "attempt.started_at",
        "time",
        default_modifier="unix",
    ),
    MacroSpec(
        "rand", "Random number, new at every expansion (cache buster)", 734019285, "(generated)", "int"
    ),
)

BY_NAME: dict[str, MacroSpec] = {key: spec for spec in CATALOG for key in (spec.name, *spec.aliases)}
# The tracker attributes a conversion by its own click ID, which only comes back through the fobs values.
CLICK_MACROS: frozenset[str] = frozenset(f"fobs{s}" for s in ("", "2", "3", "4", "5"))


def sample_values() -> dict[str, object]:
    """Values for previews and docs, keyed by canonical name."""
    return {spec.name: spec.sample for spec in CATALOG}
