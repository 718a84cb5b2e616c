"""A reported sale's credential and its click, read in one statement (the API's and S2S's hot path).

A sale reported with a click needs the advertiser's key checked, then the click, its program and its
publisher's live postbacks read: two round trips to the database, each with its own statement to run and
rows to make. Here the report is checked first, and when it names a click, that click is read beside the key
(`dispatcher.auth.Beside`), so the ledger finds it read (`ClickRead`). Nothing changes in what is answered:
a bad key is a 401 before anything about the report is said, and a malformed report is refused by the
ledger, after the key check, as before.
"""

from __future__ import annotations

from dispatcher.accounts import ADVERTISER_KEY_KIND, S2S_TOKEN_KIND
from dispatcher.auth import AdvertiserIdentity, Beside, keyed_select, require_advertiser_beside
from dispatcher.db import Db
from dispatcher.ledger import reports
from dispatcher.ledger.attribution import (
    CLICK_WITH_POSTBACKS_COLUMNS,
    CLICK_WITH_POSTBACKS_ORDER,
    ClickRead,
    click_with_postbacks_after,
)
from dispatcher.ledger.reports import CheckedReport, SaleReport
from dispatcher.validation import FieldError

_CLICK_BESIDE_TOKEN = {
    kind: keyed_select(kind, click_with_postbacks_after, *CLICK_WITH_POSTBACKS_COLUMNS).order_by(
        CLICK_WITH_POSTBACKS_ORDER
    )
    for kind in (ADVERTISER_KEY_KIND, S2S_TOKEN_KIND)
}


def advertiser_and_report(
    connection: Db,
    token: str | None,
    kind: str,
    report: SaleReport,
    statuses: tuple[str, ...] = reports.INITIAL_STATUSES,
) -> tuple[AdvertiserIdentity, SaleReport | CheckedReport, ClickRead | None]:
    """The advertiser whose token (of `kind`) this is, else a 401 as `require_advertiser_api_key` and
    `require_advertiser_s2s_token` answer; the report, checked when it is well-formed (else as given, for
    `record_sales` to refuse); and its click, read with the token when it names one. `statuses`: those the
    channel's reports may say (S2S: a repeated report may decline or reverse, see `record_sales`)."""
    checked: CheckedReport | None
    try:
        checked = reports.check(report, statuses)
    except FieldError:
        checked = None
    if checked is None or checked.click_id is None:
        identity, _ = require_advertiser_beside(connection, token, kind, None)
        return identity, checked or report, None
    beside = Beside(_CLICK_BESIDE_TOKEN[kind], {"click_id": checked.click_id})
    identity, rows = require_advertiser_beside(connection, token, kind, beside)
    return identity, checked, ClickRead(checked.click_id, rows)
