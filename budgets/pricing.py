"""The price card: which price is in force, and what usage costs, exactly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.db import transaction

from budgets.cache import cached
from budgets.errors import InvalidInputError, UnknownModelError
from budgets.models import ModelPrice

SHIPPED_PRICES = Path(__file__).resolve().parent / "data" / "prices.json"


def price_for(*, model: str, on: date) -> ModelPrice:
    """The price of ``model`` (or an alias) in force on ``on``, cached (budgets/cache.py).

    Raises UnknownModelError.
    """
    price = cached(("price", model, on), lambda: _price_load(model=model, on=on))
    if price is None:
        raise UnknownModelError(f"{model!r} is not on the price card.", model=model)
    return price


def _price_load(*, model: str, on: date) -> ModelPrice | None:
    # The card is a few dozen rows; aliases live in JSON, which SQLite cannot search inside.
    return next(
        (
            candidate
            for candidate in ModelPrice.objects.filter(effective_from__lte=on).order_by(
                "-effective_from"
            )
            if candidate.model == model or model in candidate.aliases
        ),
        None,
    )


def usage_cost(
    *,
    price: ModelPrice,
    input_tokens: int,
    cached_input_tokens: int = 0,
    cache_write_tokens: int = 0,
    output_tokens: int = 0,
) -> int:
    """Cost in micro-units: (input - cached) x input + cached x cached-input + cache-write x
    cache-write + output x output, at per-million prices.

    A price per million tokens in currency units is, per token, the same number in micro-units,
    so the sum is exact in Decimal; it is rounded up once, at the end, to a whole micro-unit
    (never under-reserve or under-charge). Raises InvalidInputError for impossible counts.
    """
    counts = (input_tokens, cached_input_tokens, cache_write_tokens, output_tokens)
    if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in counts):
        raise InvalidInputError("Token counts are non-negative integers.")
    if cached_input_tokens > input_tokens:
        raise InvalidInputError("Cached input tokens are part of the input tokens.")
    micros = (
        (input_tokens - cached_input_tokens) * price.input_per_million
        + cached_input_tokens * price.cached_input_per_million
        + cache_write_tokens * price.cache_write_per_million
        + output_tokens * price.output_per_million
    )
    return int(Decimal(micros).to_integral_value(rounding=ROUND_CEILING))


@transaction.atomic
def prices_load(*, data: Mapping[str, Any]) -> int:
    """Create or update price rows from ``{"prices": [...]}``; returns how many were written.

    Raises InvalidInputError on a malformed entry (and writes nothing).
    """
    entries = data.get("prices")
    if not isinstance(entries, list):
        raise InvalidInputError('A price file has a "prices" list.')
    written = 0
    for index, entry in enumerate(entries):
        try:
            fields = {
                "aliases": [str(alias) for alias in entry.get("aliases", [])],
                "provider": str(entry.get("provider", "")),
                "currency": str(entry.get("currency", "USD")),
                "input_per_million": _price(entry["input"]),
                "cached_input_per_million": _price(entry["cached_input"]),
                "cache_write_per_million": _price(entry.get("cache_write", "0")),
                "output_per_million": _price(entry["output"]),
            }
            model = str(entry["model"])
            effective_from = date.fromisoformat(str(entry["effective_from"]))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidInputError(f"Price entry {index} is malformed: {error}") from error
        ModelPrice.objects.update_or_create(
            model=model, effective_from=effective_from, defaults=fields
        )
        written += 1
    return written


def prices_load_file(*, path: Path) -> int:
    """Load a price file. Raises InvalidInputError."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidInputError(f"Cannot read {path}: {error}") from error
    return prices_load(data=data)


def _price(raw: object) -> Decimal:
    if isinstance(raw, float):
        raise ValueError("prices are decimal strings, never floats")
    try:
        value = Decimal(str(raw))
    except InvalidOperation as error:
        raise ValueError(f"{raw!r} is not a decimal price") from error
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.000001")):
        raise ValueError(f"{raw!r} is not a price with at most 6 decimal places")
    return value
