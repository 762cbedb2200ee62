"""Load or update the price card from a JSON file (see budgets/data/prices.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.errors import InvalidInputError
from budgets.pricing import SHIPPED_PRICES, prices_load_file


class Command(BaseCommand):
    help = "Create or update model prices from a JSON file (default: the shipped list prices)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", default=str(SHIPPED_PRICES))

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            written = prices_load_file(path=Path(options["file"]))
        except InvalidInputError as error:
            raise CommandError(error.message) from error
        self.stdout.write(self.style.SUCCESS(f"{written} prices loaded from {options['file']}"))
