"""The ledger: clicks, transactions, commissions, status changes, and the outbox they write.

Entry points for other code:
- `record_click(connection, ClickRequest)` -> the landing URL and the new click id;
- `record_sales(session | connection, advertiser_id, [SaleReport], channel)` -> one outcome per report
  (every intake channel; the API and S2S record theirs on the driver connection, `dispatcher.driver_sql`);
- `change_status(session, advertiser_id, sales_id, StatusChange, channel)`;
- `outbox.create_deliveries(session, [FiredEvent], postback_ids=..., skip_existing=...)`
  for backfill and replay.
Each writes in one database transaction and commits; the caller then hands the new delivery ids to RQ with
`dispatcher.ledger.handoff.hand_over`.
"""

from dispatcher.ledger.clicks import ClickRequest, ProgramNotFound, RecordedClick, record_click
from dispatcher.ledger.errors import StatusConflict, TransactionNotFound
from dispatcher.ledger.intake import record_sales
from dispatcher.ledger.reports import SaleReport
from dispatcher.ledger.results import Outcome, Recorded, Rejected
from dispatcher.ledger.status import Changed, StatusChange, change_status

__all__ = [
    "Changed",
    "ClickRequest",
    "Outcome",
    "ProgramNotFound",
    "Recorded",
    "RecordedClick",
    "Rejected",
    "SaleReport",
    "StatusChange",
    "StatusConflict",
    "TransactionNotFound",
    "change_status",
    "record_click",
    "record_sales",
]
