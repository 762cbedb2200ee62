"""Load demo data for the embedded default and print the admin login. Safe to re-run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledger.models import Account, AccountKind, TransferCode
from ledger.services import account_create, hold_create, hold_post, transfer_create

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "budget-ledger-demo"
NAMESPACE = "demo"


class Command(BaseCommand):
    help = "Create the demo admin and a small set of books (DEBUG only; idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Printed base URL.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_data runs only with DJANGO_DEBUG=1: it prints a password.")
        user_model = get_user_model()
        if not user_model.objects.filter(username=DEMO_USERNAME).exists():
            user_model.objects.create_superuser(DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD)
        _demo_books()
        url = options["url"].rstrip("/")
        self.stdout.write(
            self.style.SUCCESS(
                f"Budget Ledger demo: admin {url}/admin/  login {DEMO_USERNAME} / {DEMO_PASSWORD}"
                f"\n  API docs {url}/api/docs/  schema {url}/api/schema/"
            )
        )


def _account(name: str, *, kind: AccountKind, is_limited: bool) -> Account:
    existing = Account.objects.filter(name=name).first()
    return existing or account_create(name=name, currency="USD", kind=kind, is_limited=is_limited)


def _demo_books() -> None:
    """A quarter's funding flowing org -> team -> engineer, with spend posted and held."""
    funding = _account("demo funding", kind=AccountKind.SYSTEM, is_limited=False)
    spend = _account("demo spend", kind=AccountKind.SYSTEM, is_limited=False)
    org = _account("demo org pool", kind=AccountKind.POOL, is_limited=True)
    team = _account("demo team platform", kind=AccountKind.POOL, is_limited=True)
    engineer = _account("demo engineer ada", kind=AccountKind.POOL, is_limited=True)
    moves = [
        ("fund-org", funding, org, 50_000_000_000, TransferCode.FUNDING),
        ("allocate-team", org, team, 10_000_000_000, TransferCode.ALLOCATION),
        ("allocate-engineer", team, engineer, 1_500_000_000, TransferCode.ALLOCATION),
    ]
    for key, debit, credit, amount, code in moves:
        transfer_create(
            debit_account_id=debit.pk, credit_account_id=credit.pk, amount=amount,
            currency="USD", code=code, idempotency_key=key, idempotency_namespace=NAMESPACE,
            actor="demo",
        )  # fmt: skip
    for index, (reserved, spent) in enumerate([(2_000_000, 1_234_567), (500_000, 420)]):
        hold = hold_create(
            debit_account_id=engineer.pk, credit_account_id=spend.pk, amount=reserved,
            currency="USD", timeout=timedelta(minutes=10), idempotency_key=f"call-{index}",
            idempotency_namespace=NAMESPACE, metadata={"model": "claude-sonnet"}, actor="demo",
        )  # fmt: skip
        hold_post(hold_id=hold.pk, amount=spent)
