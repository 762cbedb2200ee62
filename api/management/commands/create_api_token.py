"""Create a personal API token for a user and print it once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.tokens import personal_token_create


class Command(BaseCommand):
    help = "Create a personal API token (printed once; only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="The username.")
        parser.add_argument("--name", required=True, help="What the token is for.")
        parser.add_argument("--days", type=int, default=90, help="Days until it expires.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 1:
            raise CommandError("A token lives at least one day.")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        token, raw = personal_token_create(
            user=user, name=options["name"], lifetime=timedelta(days=options["days"])
        )
        self.stdout.write(
            f"API token {token.name!r} for {options['user']} until {token.expires_at:%Y-%m-%d} "
            "(shown once):"
        )
        self.stdout.write(raw)
