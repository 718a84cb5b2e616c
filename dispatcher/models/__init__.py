"""The data model. Importing this package registers every table on `Base.metadata`."""

from dispatcher.models.audit import AuditEntry
from dispatcher.models.base import Base
from dispatcher.models.deliveries import Attempt, AttemptOutcome, Delivery, DeliveryState, ErrorClass
from dispatcher.models.demo import DemoReceipt
from dispatcher.models.ledger import (
    Channel,
    Click,
    EventKind,
    EventType,
    Transaction,
    TransactionEvent,
    TransactionStatus,
)
from dispatcher.models.parties import (
    Advertiser,
    AdvertiserUser,
    CommissionType,
    Program,
    Publisher,
    StaffRole,
    StaffUser,
    TrafficSource,
)
from dispatcher.models.postbacks import HttpMethod, Postback, postback_programs, postback_traffic_sources

__all__ = [
    "Advertiser",
    "AdvertiserUser",
    "Attempt",
    "AttemptOutcome",
    "AuditEntry",
    "Base",
    "Channel",
    "Click",
    "CommissionType",
    "Delivery",
    "DeliveryState",
    "DemoReceipt",
    "ErrorClass",
    "EventKind",
    "EventType",
    "HttpMethod",
    "Postback",
    "Program",
    "Publisher",
    "StaffRole",
    "StaffUser",
    "TrafficSource",
    "Transaction",
    "TransactionEvent",
    "TransactionStatus",
    "postback_programs",
    "postback_traffic_sources",
]
