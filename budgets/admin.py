"""Django admin for budgets, scoped by who signs in.

A superuser sees and edits everything. A member sees only their organization: admins and
finance all of it, managers the teams they manage (sub-teams included), their members and
pools. Members of the organization only read here; money moves through the allocation
services (transfer requests are decided in allocation's admin).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from budgets.models import (
    Credential,
    GatewayToken,
    Member,
    ModelPrice,
    Organization,
    OrganizationAccount,
    Period,
    Policy,
    Pool,
    Role,
    Team,
)
from budgets.selectors import (
    member_managed_team_ids,
    member_sees_organization,
    pool_balance_of,
    pools_for_teams,
)
from budgets.services import gateway_token_revoke
from ledger.money import format_micros

STAFF_ROLES = (Role.MANAGER, Role.FINANCE, Role.ADMIN)


def member_of(request: HttpRequest) -> Member | None:
    """The signed-in user's active membership, if any."""
    user = request.user
    if not user.is_authenticated:
        return None
    return Member.objects.filter(user_id=user.pk, is_active=True).first()


class OrganizationScopedAdmin(SimpleHistoryAdmin):  # type: ignore[misc]
    """Read-only for members, scoped to what their role may see; superusers as usual."""

    #: How a row reaches its organization.
    organization_path = "organization"

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        """Rows a manager of ``team_ids`` may see; subclasses say how."""
        return queryset.none()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        member = member_of(request)
        if member is None:
            return queryset.none()
        queryset = queryset.filter(**{self.organization_path: member.organization_id})
        if member_sees_organization(member=member):
            return queryset
        scoped: QuerySet[Any] = self.scope_for_manager(
            queryset, member_managed_team_ids(member=member), member
        )
        return scoped

    def _is_staff_member(self, request: HttpRequest) -> bool:
        member = member_of(request)
        return member is not None and member.role in STAFF_ROLES

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) or self._is_staff_member(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return True
        if not self._is_staff_member(request):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and self.editable_by_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    #: Configuration models a platform operator may edit here (the change is in the history).
    editable_by_superuser = False


def pools_link(label: str, query: str) -> str:
    url = reverse("admin:budgets_pool_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, query, label)


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "pk"
    list_display = ("name", "slug", "currency", "timezone", "fiscal_year_start_month")
    editable_by_superuser = True

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset


@admin.register(Team)
class TeamAdmin(OrganizationScopedAdmin):
    list_display = ("name", "parent", "cost_center", "is_active", "pools")
    list_filter = ("is_active",)
    search_fields = ("name", "slug", "cost_center")
    readonly_fields = ("pools",)
    editable_by_superuser = True

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.filter(pk__in=team_ids)

    @admin.display(description="pools")
    def pools(self, team: Team) -> str:
        return pools_link("pools", f"team__id__exact={team.pk}")


@admin.register(Member)
class MemberAdmin(OrganizationScopedAdmin):
    list_display = ("user", "email", "role", "team", "is_active", "pools")
    list_filter = ("role", "is_active", "team")
    list_select_related = ("user", "team")
    search_fields = ("user__username", "user__email")
    readonly_fields = ("pools",)
    editable_by_superuser = True

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.filter(Q(team_id__in=team_ids) | Q(pk=member.pk))

    @admin.display(description="pools")
    def pools(self, member: Member) -> str:
        return pools_link("pools", f"member__id__exact={member.pk}")


@admin.register(Period)
class PeriodAdmin(OrganizationScopedAdmin):
    list_display = ("__str__", "organization", "starts_at", "ends_at", "status")
    list_filter = ("status",)

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset


@admin.register(Pool)
class PoolAdmin(OrganizationScopedAdmin):
    list_display = (
        "__str__", "kind", "period", "budget", "spent", "reserved", "available",
    )  # fmt: skip
    list_filter = ("kind", "period", "team", "member")
    list_select_related = (
        "account", "spend_account", "period", "team", "member__user", "organization",
    )  # fmt: skip
    readonly_fields = ("budget", "moved_out", "spent", "reserved", "available", "transfers")
    fields = (
        "organization", "period", "kind", "team", "member", "name", "budget", "moved_out",
        "spent", "reserved", "available", "transfers",
    )  # fmt: skip

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.filter(pools_for_teams(team_ids=team_ids) | Q(member=member))

    def _money(self, pool: Pool, field: str) -> str:
        balance = pool_balance_of(account=pool.account, spend=pool.spend_account)
        return format_micros(getattr(balance, field), balance.currency)

    @admin.display(description="budget")
    def budget(self, pool: Pool) -> str:
        return self._money(pool, "budget")

    @admin.display(description="moved out")
    def moved_out(self, pool: Pool) -> str:
        return self._money(pool, "moved_out")

    @admin.display(description="spent")
    def spent(self, pool: Pool) -> str:
        return self._money(pool, "spent")

    @admin.display(description="reserved")
    def reserved(self, pool: Pool) -> str:
        return self._money(pool, "reserved")

    @admin.display(description="available")
    def available(self, pool: Pool) -> str:
        return self._money(pool, "available")

    @admin.display(description="ledger")
    def transfers(self, pool: Pool) -> str:
        url = reverse("admin:ledger_transfer_changelist")
        return format_html_join(
            " · ",
            '<a href="{}?account={}">{}</a>',
            [(url, pool.account_id, "pool transfers"), (url, pool.spend_account_id, "spend")],
        )


@admin.register(Policy)
class PolicyAdmin(OrganizationScopedAdmin):
    list_display = (
        "__str__", "soft_limit_share", "per_request_max", "session_cap_amount", "is_frozen",
    )  # fmt: skip
    list_filter = ("is_frozen", "credential_kind")
    editable_by_superuser = True

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.filter(Q(team_id__in=team_ids) | Q(pool__team_id__in=team_ids))


@admin.register(Credential)
class CredentialAdmin(OrganizationScopedAdmin):
    list_display = ("alias", "kind", "member", "team", "shared_pool_name", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("alias", "external_id")
    editable_by_superuser = True

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.filter(Q(team_id__in=team_ids) | Q(member__team_id__in=team_ids))


@admin.register(OrganizationAccount)
class OrganizationAccountAdmin(OrganizationScopedAdmin):
    list_display = ("organization", "purpose", "account")

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.none()


@admin.register(ModelPrice)
class ModelPriceAdmin(SimpleHistoryAdmin):  # type: ignore[misc]
    """The price card is global: every staff member reads it, platform operators edit it."""

    list_display = (
        "model", "provider", "effective_from", "input_per_million", "cached_input_per_million",
        "cache_write_per_million", "output_per_million", "currency",
    )  # fmt: skip
    list_filter = ("provider", "currency")
    search_fields = ("model",)
    ordering = ("model", "-effective_from")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(GatewayToken)
class GatewayTokenAdmin(OrganizationScopedAdmin):
    """Gateway tokens are created by ``manage.py create_gateway_token`` (shown once) and
    revoked here by a platform operator or an organization admin."""

    list_display = ("name", "organization", "prefix", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("organization", "name", "prefix", "created_at", "revoked_at")
    exclude = ("token_hash",)
    actions = ("revoke_selected",)

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.none()

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)
        member = member_of(request)
        if not request.user.is_superuser and (member is None or member.role != Role.ADMIN):
            actions.pop("revoke_selected", None)
        return actions

    @admin.action(description="Revoke selected gateway tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for token in queryset:
            gateway_token_revoke(token=token)
        self.message_user(request, f"{queryset.count()} token(s) revoked.")
