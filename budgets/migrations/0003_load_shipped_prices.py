"""Ship the price card: load budgets/data/prices.json as it was when this migration was written
into a fresh database. Later changes go through ``manage.py load_prices``."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.db import migrations

PRICES = Path(__file__).resolve().parent.parent / "data" / "prices.json"


def load(apps, schema_editor):  # type: ignore[no-untyped-def]
    model_price = apps.get_model("budgets", "ModelPrice")
    for entry in json.loads(PRICES.read_text())["prices"]:
        model_price.objects.update_or_create(
            model=entry["model"],
            effective_from=date.fromisoformat(entry["effective_from"]),
            defaults={
                "aliases": entry.get("aliases", []),
                "provider": entry.get("provider", ""),
                "currency": entry.get("currency", "USD"),
                "input_per_million": Decimal(entry["input"]),
                "cached_input_per_million": Decimal(entry["cached_input"]),
                "cache_write_per_million": Decimal(entry.get("cache_write", "0")),
                "output_per_million": Decimal(entry["output"]),
            },
        )


class Migration(migrations.Migration):
    dependencies = [("budgets", "0002_price_card")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
