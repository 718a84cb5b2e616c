"""The tables the ledger's hot paths query with prebuilt Core statements.

Statements built once at import and executed on the session's connection skip the ORM's per-call work
(building, coercing, loading objects), which is most of the cost of a click or a reported sale.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from dispatcher.models import (
    Advertiser,
    Click,
    Delivery,
    Postback,
    Program,
    Publisher,
    TrafficSource,
    Transaction,
    TransactionEvent,
)

advertisers = cast(Table, Advertiser.__table__)
clicks = cast(Table, Click.__table__)
deliveries = cast(Table, Delivery.__table__)
postbacks = cast(Table, Postback.__table__)
programs = cast(Table, Program.__table__)
publishers = cast(Table, Publisher.__table__)
traffic_sources = cast(Table, TrafficSource.__table__)
transactions = cast(Table, Transaction.__table__)
transaction_events = cast(Table, TransactionEvent.__table__)
