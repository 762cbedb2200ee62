"""Conversions between integer micro-units (the ledger's unit) and Money at the edges."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from djmoney.money import Money

from ledger.errors import InvalidAmountError

MICROS_PER_UNIT = 1_000_000
_QUANTUM = Decimal("0.000001")


def to_micros(amount: Decimal | str | int) -> int:
    """Exact micro-units of a decimal amount. Raises InvalidAmountError (floats, >6 places)."""
    if isinstance(amount, float):
        raise InvalidAmountError("Amounts must be decimals, never floats.")
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError, TypeError) as error:
        raise InvalidAmountError(f"{amount!r} is not a decimal amount.") from error
    if not value.is_finite():
        raise InvalidAmountError(f"{amount!r} is not a finite amount.")
    micros = value * MICROS_PER_UNIT
    if micros != micros.to_integral_value():
        raise InvalidAmountError(f"{amount} has more than 6 decimal places.")
    return int(micros)


def from_micros(micros: int, currency: str) -> Money:
    """Money for a micro-unit amount, exact to 6 decimal places."""
    return Money((Decimal(micros) / MICROS_PER_UNIT).quantize(_QUANTUM), currency)


def format_micros(micros: int, currency: str) -> str:
    """'12.340000 USD': exact, for logs, admin and command output."""
    return f"{(Decimal(micros) / MICROS_PER_UNIT).quantize(_QUANTUM)} {currency}"
