"""Read-only admin for the books: accounts and transfers, amounts shown as money."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from ledger.models import Account, OpenHold, Refusal, Transfer
from ledger.money import format_micros


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The books change only through services; admin shows them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "name", "kind", "currency", "is_limited", "is_closed",
        "available_money", "posted_balance_money", "held_money",
    )  # fmt: skip
    list_filter = ("kind", "currency", "is_limited", "is_closed")
    search_fields = ("name",)
    readonly_fields = (
        "available_money", "posted_balance_money", "held_money", "debits_posted_money",
        "credits_posted_money", "debits_pending_money", "credits_pending_money",
        "overage_posted_money",
    )  # fmt: skip
    exclude = ("debits_posted", "credits_posted", "debits_pending", "credits_pending",
               "overage_posted")  # fmt: skip

    @admin.display(description="available")
    def available_money(self, account: Account) -> str:
        return format_micros(account.available, account.currency)

    @admin.display(description="posted balance")
    def posted_balance_money(self, account: Account) -> str:
        return format_micros(account.balance, account.currency)

    @admin.display(description="held")
    def held_money(self, account: Account) -> str:
        return format_micros(account.debits_pending, account.currency)

    @admin.display(description="debits posted")
    def debits_posted_money(self, account: Account) -> str:
        return format_micros(account.debits_posted, account.currency)

    @admin.display(description="credits posted")
    def credits_posted_money(self, account: Account) -> str:
        return format_micros(account.credits_posted, account.currency)

    @admin.display(description="debits pending")
    def debits_pending_money(self, account: Account) -> str:
        return format_micros(account.debits_pending, account.currency)

    @admin.display(description="credits pending")
    def credits_pending_money(self, account: Account) -> str:
        return format_micros(account.credits_pending, account.currency)

    @admin.display(description="overage posted")
    def overage_posted_money(self, account: Account) -> str:
        return format_micros(account.overage_posted, account.currency)


class AccountFilter(admin.SimpleListFilter):
    """Transfers touching one account, on either side (``?account=ID`` works for any id)."""

    title = "account"
    parameter_name = "account"
    max_listed = 200

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        accounts = Account.objects.order_by("id")[: self.max_listed]
        return [(str(account.pk), str(account)) for account in accounts]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value or not value.isdigit():
            return queryset
        return queryset.filter(Q(debit_account_id=value) | Q(credit_account_id=value))


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "created_at", "code", "phase", "amount_money", "debit_account", "credit_account",
        "pending", "actor",
    )  # fmt: skip
    list_filter = (AccountFilter, "code", "phase", "currency", "created_at")
    list_select_related = ("debit_account", "credit_account")
    search_fields = ("idempotency_key", "actor", "=debit_account__id", "=credit_account__id")
    date_hierarchy = "created_at"
    exclude = ("amount",)
    readonly_fields = ("amount_money",)
    raw_id_fields = ("debit_account", "credit_account", "pending", "reverses")

    @admin.display(description="amount", ordering="amount")
    def amount_money(self, transfer: Transfer) -> str:
        return format_micros(transfer.amount, transfer.currency)


@admin.register(OpenHold)
class OpenHoldAdmin(ReadOnlyAdmin):
    list_display = ("hold", "expires_at", "amount_money", "debit_account", "credit_account")
    list_select_related = ("debit_account", "credit_account")
    exclude = ("amount",)
    readonly_fields = ("amount_money",)

    @admin.display(description="amount", ordering="amount")
    def amount_money(self, hold: OpenHold) -> str:
        return format_micros(hold.amount, hold.currency)


@admin.register(Refusal)
class RefusalAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "idempotency_namespace", "idempotency_key", "code", "message")
    list_filter = ("code",)
    search_fields = ("idempotency_key",)
