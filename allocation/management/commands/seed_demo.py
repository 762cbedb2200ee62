"""Seed the embedded demo: one organization with teams, people, an open funded quarter and
pending requests; print the logins. Safe to re-run (an existing organization is kept)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from allocation.demo import demo_organization_create
from budgets.models import Organization

DEMO_PASSWORD = "budget-ledger-demo"  # a documented demo login, DEBUG only
SUPERUSER = "admin"


class Command(BaseCommand):
    help = "Create the demo organization and logins (DEBUG only; idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", default="acme")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Printed base URL.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("seed_demo runs only with DJANGO_DEBUG=1: it prints passwords.")
        slug = options["slug"]
        users = get_user_model()
        if not users.objects.filter(username=SUPERUSER).exists():
            users.objects.create_superuser(SUPERUSER, "admin@example.com", DEMO_PASSWORD)
        if Organization.objects.filter(slug=slug).exists():
            self.stdout.write(f"organization {slug!r} exists; keeping it")
        else:
            demo_organization_create(slug=slug, password=DEMO_PASSWORD, now=timezone.now())
            self.stdout.write(f"organization {slug!r} created")
        url = options["url"].rstrip("/")
        logins = [
            (SUPERUSER, "platform operator (superuser)"),
            (f"{slug}-admin", "organization admin"),
            (f"{slug}-finance", "finance (read-only)"),
            (f"{slug}-platform-lead", "manager of Platform (and its sub-team Infra)"),
            (f"{slug}-product-lead", "manager of Product"),
            (f"{slug}-research-lead", "manager of Research"),
        ]
        lines = [f"  {username:<24} {role}" for username, role in logins]
        self.stdout.write(
            self.style.SUCCESS(
                f"Budget Ledger demo: admin {url}/admin/  password for every login: "
                f"{DEMO_PASSWORD}\n" + "\n".join(lines) + f"\n  API docs {url}/api/docs/"
            )
        )
