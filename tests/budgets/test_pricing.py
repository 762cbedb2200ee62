"""The price card: the price in force, exact costs, loading files."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from budgets.errors import InvalidInputError, UnknownModelError
from budgets.models import ModelPrice
from budgets.pricing import price_for, prices_load, usage_cost

pytestmark = pytest.mark.django_db


def test_the_shipped_card_is_loaded_by_migrations() -> None:
    sonnet = price_for(model="claude-sonnet-4-5-20250929", on=date(2026, 11, 23))

    assert sonnet.model == "claude-sonnet-4-5"
    assert (sonnet.input_per_million, sonnet.output_per_million) == (Decimal("3"), Decimal("15"))
    assert ModelPrice.objects.count() >= 13


def test_cost_prices_cached_and_uncached_input_separately() -> None:
    sonnet = price_for(model="claude-sonnet-4-5", on=date(2026, 11, 23))

    # 10,000 input of which 8,000 cached, 1,000 cache-write, 500 output:
    # 2,000 x 3 + 8,000 x 0.30 + 1,000 x 3.75 + 500 x 15 = 6,000 + 2,400 + 3,750 + 7,500
    cost = usage_cost(
        price=sonnet, input_tokens=10_000, cached_input_tokens=8_000, cache_write_tokens=1_000,
        output_tokens=500,
    )  # fmt: skip

    assert cost == 19_650  # micro-units: $0.019650


def test_cost_rounds_up_once_to_a_whole_micro_unit() -> None:
    gpt5 = price_for(model="gpt-5", on=date(2026, 11, 23))

    assert usage_cost(price=gpt5, input_tokens=1, cached_input_tokens=1) == 1  # 0.125 → 1
    assert usage_cost(price=gpt5, input_tokens=8, cached_input_tokens=8) == 1  # exactly 1.000
    assert usage_cost(price=gpt5, input_tokens=0) == 0


@pytest.mark.parametrize(
    ("counts", "message"),
    [({"input_tokens": -1}, "non-negative"), ({"input_tokens": 5, "cached_input_tokens": 6},
     "part of the input")],
)  # fmt: skip
def test_impossible_counts_are_refused(counts: dict[str, int], message: str) -> None:
    price = price_for(model="gpt-5", on=date(2026, 11, 23))

    with pytest.raises(InvalidInputError, match=message):
        usage_cost(price=price, **counts)


def test_the_price_in_force_on_the_day_is_used() -> None:
    prices_load(
        data={"prices": [{"model": "gpt-5", "input": "2.00", "cached_input": "0.2",
                          "output": "12.00", "effective_from": "2026-12-01"}]}
    )  # fmt: skip

    assert price_for(model="gpt-5", on=date(2026, 11, 30)).input_per_million == Decimal("1.25")
    assert price_for(model="gpt-5", on=date(2026, 12, 1)).input_per_million == Decimal("2")
    with pytest.raises(UnknownModelError):
        price_for(model="gpt-5", on=date(2020, 1, 1))
    with pytest.raises(UnknownModelError):
        price_for(model="no-such-model", on=date(2026, 11, 23))


def entry(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": "x", "input": "1", "cached_input": "0", "output": "1",
        "effective_from": "2026-01-01",
    }  # fmt: skip
    return {key: value for key, value in {**base, **changes}.items() if value is not None}


@pytest.mark.parametrize(
    "bad",
    [
        entry(input=1.5),
        entry(input="-1"),
        entry(input="0.0000001"),
        entry(effective_from="soon"),
        entry(input=None),
    ],
)
def test_a_malformed_price_file_writes_nothing(bad: dict[str, object]) -> None:
    before = ModelPrice.objects.count()

    with pytest.raises(InvalidInputError):
        prices_load(data={"prices": [entry(model="y"), bad]})

    assert ModelPrice.objects.count() == before


def test_load_prices_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"prices": [{"model": "house-model", "input": "1", "cached_input":
                    "0.1", "output": "2", "effective_from": "2026-11-01"}]}))  # fmt: skip

    call_command("load_prices", str(path))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_prices", str(tmp_path / "missing.json"))

    assert "1 prices loaded" in capsys.readouterr().out
    assert price_for(model="house-model", on=date(2026, 11, 23)).output_per_million == 2
