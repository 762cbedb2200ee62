"""Micro-units at the core, Money at the edges: exact both ways."""

from __future__ import annotations

from decimal import Decimal

import pytest
from djmoney.money import Money

from ledger.errors import InvalidAmountError
from ledger.money import format_micros, from_micros, to_micros


@pytest.mark.parametrize(
    ("amount", "micros"),
    [("0.00002", 20), ("1", 1_000_000), (Decimal("123.456789"), 123_456_789), ("-0.5", -500_000)],
)
def test_to_micros_is_exact(amount: str | Decimal, micros: int) -> None:
    assert to_micros(amount) == micros


@pytest.mark.parametrize("amount", ["0.0000001", "abc", "NaN", "Infinity", 0.1])
def test_to_micros_refuses_what_is_not_an_exact_decimal(amount: object) -> None:
    with pytest.raises(InvalidAmountError):
        to_micros(amount)  # type: ignore[arg-type]


def test_from_micros_gives_money_with_six_places() -> None:
    assert from_micros(20, "USD") == Money("0.000020", "USD")
    assert str(from_micros(20, "USD").amount) == "0.000020"
    assert format_micros(-1_500_000, "EUR") == "-1.500000 EUR"
