"""Commission: percent of the sale or flat per event, in the currency's minor units, rounded half-up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import update

from dispatcher.ledger.commission import CommissionRule, commission
from dispatcher.models import Program
from dispatcher.validation import FieldError
from tests.dispatcher.ledger.conftest import Network


def rule(kind: str, value: str, currency: str = "USD", *, advertiser_may: bool = False) -> CommissionRule:
    return CommissionRule(kind, Decimal(value), currency, advertiser_may)


@pytest.mark.parametrize(
    ("the_rule", "sale", "currency", "expected"),
    [
        (rule("percent", "10"), "100.00", "USD", "10.00"),
        (rule("percent", "10"), "0.05", "USD", "0.01"),  # 0.005 rounds half up
        (rule("percent", "10"), "0.04", "USD", "0.00"),  # 0.004 rounds down
        (rule("percent", "7.5"), "19.99", "USD", "1.50"),  # 1.49925
        (rule("percent", "12.5"), "0.20", "USD", "0.03"),  # 0.025: half up, not to even
        (rule("percent", "10"), "5", "JPY", "1"),  # 0.5 yen
        (rule("percent", "10"), "1.005", "KWD", "0.101"),  # 0.1005 dinar, 3 decimals
        (rule("percent", "0"), "100.00", "USD", "0.00"),
        (rule("percent", "100"), "19.99", "EUR", "19.99"),
        (rule("flat", "5.00"), "100.00", "USD", "5.00"),
        (rule("flat", "5.00"), "0.00", "USD", "5.00"),
        (rule("flat", "2.5", "JPY"), "100", "JPY", "3"),
    ],
)
def test_the_program_rule_gives_the_commission(
    the_rule: CommissionRule, sale: str, currency: str, expected: str
) -> None:
    result = commission(the_rule, Decimal(sale), currency)

    assert str(result) == expected


def test_the_advertisers_figure_is_taken_when_the_program_allows_it() -> None:
    assert commission(rule("percent", "10", advertiser_may=True), Decimal("100"), "USD", "3.25") == Decimal(
        "3.25"
    )


@pytest.mark.parametrize(
    ("the_rule", "currency", "reported", "field", "problem"),
    [
        (rule("percent", "10"), "USD", "3.25", "commission", "is not accepted"),
        (rule("percent", "10", advertiser_may=True), "USD", "3.255", "commission", "must have at most 2"),
        (rule("percent", "10", advertiser_may=True), "USD", "-1", "commission", "must not be negative"),
        (rule("flat", "5.00", "USD"), "EUR", None, "currency", "must be USD, the currency of this program"),
    ],
)
def test_commissions_that_cannot_be_given_are_refused(
    the_rule: CommissionRule, currency: str, reported: str | None, field: str, problem: str
) -> None:
    with pytest.raises(FieldError) as caught:
        commission(the_rule, Decimal("100"), currency, reported)

    assert caught.value.field == field
    assert caught.value.problem.startswith(problem)


@pytest.mark.parametrize(
    ("program", "body", "expected"),
    [
        ({"commission_type": "percent", "commission_value": Decimal("8")}, {"sale_amount": "59.99"}, "4.80"),
        ({"commission_type": "flat", "commission_value": Decimal("12.50")}, {"sale_amount": "1.00"}, "12.50"),
        ({"allow_advertiser_commission": True}, {"sale_amount": "10.00", "commission": 2}, "2.00"),
        ({"allow_advertiser_commission": True}, {"sale_amount": "10.00"}, "1.00"),
    ],
)
def test_reported_sales_carry_the_programs_commission(
    network: Network, program: dict[str, object], body: dict[str, object], expected: str
) -> None:
    with network.session() as session:
        session.execute(update(Program).values(**program))

    assert network.sale(**body)["commission"] == expected
