"""Money on the wire: {"amount": "<decimal string>", "currency": "USD"}; never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ledger.errors import InvalidAmountError
from ledger.money import MICROS_PER_UNIT, to_micros


def money(micros: int, currency: str) -> dict[str, str]:
    """Micro-units as a money object with six decimal places."""
    amount = (Decimal(micros) / MICROS_PER_UNIT).quantize(Decimal("0.000001"))
    return {"amount": str(amount), "currency": currency}


class MoneySerializer(serializers.Serializer[dict[str, str]]):
    amount = serializers.CharField(help_text='A decimal string, e.g. "0.000420".')
    currency = serializers.CharField(help_text="ISO 4217.")


@extend_schema_field({"type": "string", "pattern": r"^\d+(\.\d{1,6})?$", "example": "0.250000"})
class DecimalAmountField(serializers.Field[int, Any, str, Any]):
    """A positive decimal string with at most six places, read as micro-units. Numbers are
    refused: JSON numbers are floats to most clients."""

    default_error_messages = {
        "type": 'Send the amount as a decimal string, e.g. "0.25".',
        "invalid": "{error}",
        "positive": "The amount must be greater than zero.",
        "too_large": "The amount must be at most 1000000000.",
    }
    max_micros = 1_000_000_000 * MICROS_PER_UNIT

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        self.allow_zero = allow_zero  # a plan line or total may be 0; a movement of money never
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str):
            self.fail("type")
        try:
            micros = to_micros(data)
        except InvalidAmountError as error:
            self.fail("invalid", error=error.message)
        if micros < 0 or (micros == 0 and not self.allow_zero):
            self.fail("positive")
        if micros > self.max_micros:
            self.fail("too_large")
        return micros

    def to_representation(self, value: int) -> str:
        return str((Decimal(value) / MICROS_PER_UNIT).quantize(Decimal("0.000001")))


class StrictCharField(serializers.CharField):
    """A string, and only a string: numbers and booleans are refused, not converted."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
