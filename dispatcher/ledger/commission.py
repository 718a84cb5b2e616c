"""What the publisher earns on a transaction.

Per program, one of:
- percent: `sale_amount * percent / 100`;
- flat: the program's amount per event, whatever the sale amount;
- the advertiser's own figure (`commission` in the report), only when the program allows it.

The result is a Decimal in the transaction's currency, rounded half-up to the currency's minor units
(0.005 USD -> 0.01; 0.5 JPY -> 1), the usual commercial rounding, so a publisher is never paid in fractions
of a cent. A flat commission is in the program's currency, so a report in another currency is refused
rather than converted at a rate we do not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from dispatcher.ledger import fields
from dispatcher.models import CommissionType
from dispatcher.validation import FieldError


@dataclass(frozen=True)
class CommissionRule:
    commission_type: str
    value: Decimal
    currency: str
    allow_advertiser_commission: bool


def commission(rule: CommissionRule, sale_amount: Decimal, currency: str, reported: object = None) -> Decimal:
    """The commission on `sale_amount` (already checked against `currency`); `reported` is the raw value."""
    if not fields.is_blank(reported):
        if not rule.allow_advertiser_commission:
            raise FieldError("commission", reported, "is not accepted: this program sets the commission")
        amount = fields.amount("commission", reported)
        return fields.in_currency("commission", amount, currency, reported)
    if rule.commission_type == CommissionType.PERCENT.value:
        return rounded(sale_amount * rule.value / 100, currency)
    if currency != rule.currency:
        raise FieldError(
            "currency", currency, f"must be {rule.currency}, the currency of this program's flat commission"
        )
    return rounded(rule.value, currency)


def rounded(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(fields.minor_unit(currency), rounding=ROUND_HALF_UP)
