"""Django admin for budgets, scoped by who signs in.

A superuser sees and edits everything. A member sees only their organization: admins and
finance all of it, managers the teams they manage (sub-teams included), their members and
pools. Members of the organization only read here; money moves through the allocation
services (transfer requests are decided in allocation's admin).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from budgets.alerts import alert_acknowledge, thresholds_of
from budgets.errors import BudgetError
from budgets.models import (
    Alert,
    AlertSettings,
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
    WebhookDelivery,
    WebhookSubscription,
)
from budgets.selectors import (
    member_managed_team_ids,
    member_sees_organization,
    pool_balance_of,
    pools_for_teams,
)
from budgets.services import gateway_token_revoke
from budgets.webhooks import delivery_resend, webhook_create
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


# --- alerts (docs/alerts.md) -------------------------------------------------------------------


def _is_org_admin(request: HttpRequest) -> bool:
    member = member_of(request)
    return member is not None and member.role == Role.ADMIN


@admin.register(Alert)
class AlertAdmin(OrganizationScopedAdmin):
    """Alerts as raised; managers see their teams' pools', and acknowledge them here."""

    list_display = ("raised_at", "kind", "message", "pool", "acknowledged_at", "acknowledged_by")
    list_filter = ("kind", ("acknowledged_at", admin.EmptyFieldListFilter))
    list_select_related = ("pool", "acknowledged_by__user")
    readonly_fields = (
        "organization", "kind", "key", "period", "pool", "message", "details", "raised_at",
        "acknowledged_at", "acknowledged_by",
    )  # fmt: skip
    actions = ("acknowledge_selected",)

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.filter(
            Q(pool__team_id__in=team_ids) | Q(pool__member__team_id__in=team_ids)
        )

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        member = member_of(request)
        if member is None:
            self.message_user(request, "Only members acknowledge alerts.", messages.ERROR)
            return
        done = 0
        for alert in queryset:
            try:
                alert_acknowledge(alert=alert, member=member)
                done += 1
            except BudgetError as refusal:
                self.message_user(request, f"{alert}: {refusal.message}", messages.WARNING)
        self.message_user(request, f"{done} alert(s) acknowledged.")


class OrganizationAdminEdits(OrganizationScopedAdmin):
    """Configuration an organization's admins add and change for their own organization."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return bool(request.user.is_superuser) or _is_org_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request) and (
            obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if request.user.is_superuser else ("organization",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self._own_organization(request, obj)
        super().save_model(request, obj, form, change)

    def _own_organization(self, request: HttpRequest, obj: Any) -> None:
        member = member_of(request)
        if not request.user.is_superuser and member is not None:
            obj.organization_id = member.organization_id


class AlertSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    """Thresholds the alert check can read: refused here, not found broken at the next check."""

    class Meta:
        model = AlertSettings
        fields = ("organization", "thresholds", "day_multiple", "session_multiple", "call_amount")

    def clean_thresholds(self) -> Any:
        thresholds = self.cleaned_data["thresholds"]
        try:
            thresholds_of(AlertSettings(thresholds=thresholds))
        except BudgetError as refusal:
            raise forms.ValidationError(refusal.message) from None
        return thresholds


@admin.register(AlertSettings)
class AlertSettingsAdmin(OrganizationAdminEdits):
    """Organization admins set their alert rules; the others read them."""

    form = AlertSettingsForm
    list_display = ("organization", "thresholds", "day_multiple", "session_multiple")


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(OrganizationAdminEdits):
    """Organization admins add webhooks; the secret is made here and shown to them."""

    list_display = ("name", "url", "events", "format", "is_active", "created_at")
    list_filter = ("is_active", "format")

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "url":
            kwargs["assume_scheme"] = "https"  # a URL typed without a scheme is https
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ("secret",) if obj is not None else ()
        return fields if request.user.is_superuser else (*fields, "organization")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["organization", "name", "url", "events", "format", "is_active"]
        return (
            [*fields, "secret"] if obj is not None and self.has_add_permission(request) else fields
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self._own_organization(request, obj)
        if change:
            obj.save()
            return
        created = webhook_create(
            organization=obj.organization, name=obj.name, url=obj.url, events=obj.events,
            format=obj.format,
        )  # fmt: skip
        obj.pk, obj.secret, obj.created_at = created.pk, created.secret, created.created_at
        obj._state.adding = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OrganizationScopedAdmin):
    """The delivery log; organization admins send a delivery again."""

    organization_path = "subscription__organization"
    list_display = (
        "alert", "subscription", "status", "attempts", "last_status_code", "last_attempt_at",
        "next_attempt_at", "delivered_at",
    )  # fmt: skip
    list_filter = ("status",)
    list_select_related = ("alert", "subscription")
    readonly_fields = (
        "subscription", "alert", "status", "attempts", "next_attempt_at", "last_attempt_at",
        "last_status_code", "last_error", "delivered_at",
    )  # fmt: skip
    actions = ("resend_selected",)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)
        if not (request.user.is_superuser or _is_org_admin(request)):
            actions.pop("resend_selected", None)
        return actions

    @admin.action(description="Send selected deliveries again")
    def resend_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        from budgets.tasks import webhook_deliver

        now = timezone.now()
        for delivery in queryset:
            delivery_resend(delivery=delivery, now=now)
            webhook_deliver.delay(delivery.pk)
        self.message_user(request, f"{queryset.count()} delivery(ies) queued again.")
