"""Create a gateway token for an organization and print it once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.models import Organization
from budgets.services import gateway_token_create


class Command(BaseCommand):
    help = "Create a gateway token (printed once; only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("--name", required=True, help="Which gateway holds it.")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organization with slug {options['org']!r}.")
        token, raw = gateway_token_create(organization=organization, name=options["name"])
        self.stdout.write(f"gateway token {token.name!r} for {organization.slug} (shown once):")
        self.stdout.write(raw)
