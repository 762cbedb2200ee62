"""Transfer requests in Django admin: managers approve and reject, scoped to their teams.

Decisions go through the allocation services (the same rules as the API); a refusal is shown
with its code and message and changes nothing.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join

from allocation.exemptions import exemption_approve, exemption_reject, exemption_revoke
from allocation.models import (
    Exemption,
    ExemptionStatus,
    Plan,
    PlanLine,
    RolloverPolicy,
    TransferRequest,
    TransferRequestStatus,
)
from allocation.planning import plan_approve, plan_compare, plan_line_set
from allocation.rules import member_can_decide, member_can_decide_exemption, member_manages_pool
from allocation.services import transfer_request_approve, transfer_request_reject
from budgets.admin import OrganizationScopedAdmin, member_of
from budgets.errors import NotAllowedError
from budgets.models import Member, Team
from budgets.selectors import pool_balance
from ledger.errors import DomainError
from ledger.money import format_micros


class TeamFilter(admin.SimpleListFilter):
    """Requests whose source or target pool belongs to a team (members' pools included)."""

    title = "team"
    parameter_name = "team"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        teams = Team.objects.all()
        if not request.user.is_superuser:
            member = member_of(request)
            teams = teams.filter(organization_id=member.organization_id) if member else teams.none()
        return [(str(team.pk), str(team)) for team in teams.order_by("name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value or not value.isdigit():
            return queryset
        team = int(value)
        return queryset.filter(
            Q(source__team_id=team)
            | Q(source__member__team_id=team)
            | Q(target__team_id=team)
            | Q(target__member__team_id=team)
        )


@admin.register(TransferRequest)
class TransferRequestAdmin(OrganizationScopedAdmin):
    list_display = (
        "id", "status", "source", "target", "amount_money", "requester", "created_at",
        "expires_at", "decided_by",
    )  # fmt: skip
    list_filter = ("status", TeamFilter, ("requester", admin.RelatedOnlyFieldListFilter))
    list_select_related = (
        "source__team", "source__member__user", "source__period", "source__organization",
        "target__team", "target__member__user", "target__period", "target__organization",
        "requester__user", "decided_by__user",
    )  # fmt: skip
    readonly_fields = (
        "organization", "source", "target", "amount_money", "reason", "requester", "status",
        "decided_by", "decided_at", "decision_reason", "ledger_transfer", "created_at",
        "expires_at",
    )  # fmt: skip
    exclude = ("amount",)
    actions = ("approve_selected", "reject_selected")
    change_form_template = "admin/allocation/transferrequest/change_form.html"

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        # Both sides: a manager sees what leaves and what reaches their teams and members.
        return queryset.filter(
            Q(source__team_id__in=team_ids)
            | Q(source__member__team_id__in=team_ids)
            | Q(target__team_id__in=team_ids)
            | Q(target__member__team_id__in=team_ids)
            | Q(requester=member)
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)
        member = member_of(request)
        if member is None or member.role not in ("manager", "admin"):
            actions.pop("approve_selected", None)
            actions.pop("reject_selected", None)
        return actions

    @admin.display(description="amount", ordering="amount")
    def amount_money(self, request_: TransferRequest) -> str:
        return format_micros(request_.amount, request_.source.organization.currency)

    # --- decisions -------------------------------------------------------------------------

    @admin.action(description="Approve selected requests")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        member = member_of(request)
        for transfer_request in queryset.order_by("pk"):
            self._decide(request, transfer_request, member, approve=True)

    @admin.action(description="Reject selected requests…")
    def reject_selected(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> TemplateResponse | None:
        member = member_of(request)
        reason = request.POST.get("reason", "")
        if "apply" in request.POST:
            for transfer_request in queryset.order_by("pk"):
                self._decide(request, transfer_request, member, approve=False, reason=reason)
            return None
        return TemplateResponse(
            request,
            "admin/allocation/transferrequest/reject.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "requests": queryset,
                "action": "reject_selected",
                "title": "Reject transfer requests",
            },
        )

    def _decide(
        self,
        request: HttpRequest,
        transfer_request: TransferRequest,
        member: Member | None,
        *,
        approve: bool,
        reason: str = "",
    ) -> bool:
        if member is None:
            messages.error(request, "Only members of the organization decide requests.")
            return False
        try:
            if approve:
                transfer_request_approve(request=transfer_request, approver=member)
            else:
                transfer_request_reject(request=transfer_request, approver=member, reason=reason)
        except DomainError as error:
            messages.error(
                request, f"Request #{transfer_request.pk}: {error.message} ({error.code})"
            )
            return False
        verb = "approved and executed" if approve else "rejected"
        messages.success(request, f"Request #{transfer_request.pk} {verb}.")
        return True

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:object_id>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="allocation_transferrequest_approve",
            ),
            path(
                "<int:object_id>/reject/",
                self.admin_site.admin_view(self.reject_view),
                name="allocation_transferrequest_reject",
            ),
            *super().get_urls(),
        ]

    def _visible(self, request: HttpRequest, object_id: int) -> TransferRequest:
        visible: TransferRequest = get_object_or_404(self.get_queryset(request), pk=object_id)
        return visible

    def approve_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        transfer_request = self._visible(request, object_id)
        if request.method == "POST":
            self._decide(request, transfer_request, member_of(request), approve=True)
        return HttpResponseRedirect(
            reverse("admin:allocation_transferrequest_change", args=[object_id])
        )

    def reject_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        transfer_request = self._visible(request, object_id)
        if request.method == "POST":
            self._decide(
                request, transfer_request, member_of(request), approve=False,
                reason=request.POST.get("reason", ""),
            )  # fmt: skip
        return HttpResponseRedirect(
            reverse("admin:allocation_transferrequest_change", args=[object_id])
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        transfer_request = self.get_queryset(request).filter(pk=object_id).first()
        if transfer_request is not None:
            member = member_of(request)
            currency = transfer_request.source.organization.currency
            context["balances"] = [
                (label, pool, format_micros(pool_balance(pool=pool).available, currency))
                for label, pool in (
                    ("Source", transfer_request.source),
                    ("Target", transfer_request.target),
                )
            ]
            context["can_decide"] = (
                transfer_request.status == TransferRequestStatus.PENDING
                and member is not None
                and member_can_decide(member=member, request=transfer_request)
            )
        response: HttpResponse = super().change_view(request, object_id, form_url, context)
        return response


# --- exemptions ---------------------------------------------------------------------------------


@admin.register(Exemption)
class ExemptionAdmin(OrganizationScopedAdmin):
    """Managers of the pool's team and admins approve, reject and revoke; finance reads."""

    list_display = (
        "id", "status", "pool", "amount_money", "starts_at", "ends_at", "use_case", "requester",
        "decided_by", "clawed_back_money",
    )  # fmt: skip
    list_filter = ("status", ("requester", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("pool__member__user", "pool__team", "pool__period", "requester__user")
    readonly_fields = (
        "organization", "pool", "source", "source_pool", "amount_money", "starts_at", "ends_at",
        "use_case", "reason", "requester", "status", "decided_by", "decided_at",
        "decision_reason", "grant_transfer", "granted_at", "clawback_transfer",
        "clawed_back_money", "ended_at", "last_error",
    )  # fmt: skip
    exclude = ("amount", "clawed_back")
    actions = ("approve_selected", "reject_selected", "revoke_selected")
    change_form_template = "admin/allocation/exemption/change_form.html"

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.filter(
            Q(pool__team_id__in=team_ids) | Q(pool__member__team_id__in=team_ids)
            | Q(requester=member)
        )  # fmt: skip

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)
        member = member_of(request)
        if member is None or member.role not in ("manager", "admin"):
            for name in ("approve_selected", "reject_selected", "revoke_selected"):
                actions.pop(name, None)
        return actions

    @admin.display(description="amount", ordering="amount")
    def amount_money(self, exemption: Exemption) -> str:
        return format_micros(exemption.amount, exemption.pool.account.currency)

    @admin.display(description="clawed back")
    def clawed_back_money(self, exemption: Exemption) -> str:
        return format_micros(exemption.clawed_back, exemption.pool.account.currency)

    def _apply(self, request: HttpRequest, exemption: Exemption, verb: str) -> None:
        member = member_of(request)
        now = timezone.now()
        try:
            if member is None:
                raise NotAllowedError("Only members of the organization decide exemptions.")
            if verb == "approve":
                exemption_approve(exemption=exemption, approver=member, now=now)
            elif verb == "reject":
                exemption_reject(
                    exemption=exemption, approver=member, now=now,
                    reason=request.POST.get("reason", ""),
                )  # fmt: skip
            else:
                exemption_revoke(
                    exemption=exemption, actor=member, now=now,
                    reason=request.POST.get("reason", ""),
                )  # fmt: skip
        except DomainError as error:
            messages.error(request, f"Exemption #{exemption.pk}: {error.message} ({error.code})")
            return
        messages.success(request, f"Exemption #{exemption.pk}: {verb}d.")

    @admin.action(description="Approve selected exemptions")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for exemption in queryset.order_by("pk"):
            self._apply(request, exemption, "approve")

    @admin.action(description="Reject selected exemptions (reason from the form)")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for exemption in queryset.order_by("pk"):
            self._apply(request, exemption, "reject")

    @admin.action(description="Revoke selected exemptions (claws back the unspent part)")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for exemption in queryset.order_by("pk"):
            self._apply(request, exemption, "revoke")

    def get_urls(self) -> list[Any]:
        urls: list[Any] = [
            path(
                f"<int:object_id>/{verb}/",
                self.admin_site.admin_view(partial(self.decision_view, verb=verb)),
                name=f"allocation_exemption_{verb}",
            )
            for verb in ("approve", "reject", "revoke")
        ]
        return urls + list(super().get_urls())

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        exemption = self.get_queryset(request).filter(pk=object_id).first()
        member = member_of(request)
        if exemption is not None and member is not None:
            currency = exemption.pool.account.currency
            context["balances"] = [
                (label, pool, format_micros(pool_balance(pool=pool).available, currency))
                for label, pool in (("Pool", exemption.pool), ("Source", exemption.source_pool))
            ]
            context["can_decide"] = (
                exemption.status == ExemptionStatus.PENDING
                and member_can_decide_exemption(member=member, exemption=exemption)
            )
            context["can_revoke"] = exemption.status in (
                ExemptionStatus.APPROVED, ExemptionStatus.GRANTED,
            ) and member_manages_pool(member=member, pool=exemption.pool)  # fmt: skip
        response: HttpResponse = super().change_view(request, object_id, form_url, context)
        return response

    def decision_view(self, request: HttpRequest, object_id: int, verb: str) -> HttpResponse:
        exemption = get_object_or_404(self.get_queryset(request), pk=object_id)
        if request.method == "POST":
            self._apply(request, exemption, verb)
        return HttpResponseRedirect(reverse("admin:allocation_exemption_change", args=[object_id]))


# --- plans ----------------------------------------------------------------------------------------


class PlanLineInline(admin.TabularInline):  # type: ignore[type-arg]
    model = PlanLine
    fields = ("kind", "team", "member", "name", "baseline_money", "amount_money")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="measured")
    def baseline_money(self, line: PlanLine) -> str:
        return format_micros(line.baseline, line.plan.organization.currency)

    @admin.display(description="planned")
    def amount_money(self, line: PlanLine) -> str:
        return format_micros(line.amount, line.plan.organization.currency)


@admin.register(Plan)
class PlanAdmin(OrganizationScopedAdmin):
    """Finance and admins see plans, approve drafts and compare approved ones with what
    happened; lines are edited in the plan line list (drafts only)."""

    list_display = ("id", "period", "status", "total_money", "baseline", "buffer", "approved_by")
    list_filter = ("status", ("period", admin.RelatedOnlyFieldListFilter))
    readonly_fields = (
        "organization", "period", "status", "baseline", "buffer", "total_money", "created_by",
        "approved_by", "approved_at", "comparison",
    )  # fmt: skip
    exclude = ("total",)
    inlines = (PlanLineInline,)
    actions = ("approve_selected",)

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.none()

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)
        member = member_of(request)
        if member is None or member.role not in ("finance", "admin"):
            actions.pop("approve_selected", None)
        return actions

    @admin.display(description="total")
    def total_money(self, plan: Plan) -> str:
        return format_micros(plan.total, plan.organization.currency)

    @admin.display(description="plan vs real (planned / kept / spent)")
    def comparison(self, plan: Plan) -> str:
        currency = plan.organization.currency

        def money(value: int | None) -> str:
            return "—" if value is None else format_micros(value, currency)

        return format_html_join(
            "",
            "<div>{}: {} / {} / {}</div>",
            [
                (str(row.line), money(row.planned), money(row.allocated), money(row.spent))
                for row in plan_compare(plan=plan)
            ],
        )

    @admin.action(description="Approve selected plans")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        member = member_of(request)
        for plan in queryset.order_by("pk"):
            try:
                if member is None:
                    raise NotAllowedError("Only members of the organization approve plans.")
                plan_approve(plan=plan, actor=member, now=timezone.now())
            except DomainError as error:
                messages.error(request, f"Plan #{plan.pk}: {error.message} ({error.code})")
                continue
            messages.success(request, f"Plan #{plan.pk} approved.")


@admin.register(PlanLine)
class PlanLineAdmin(OrganizationScopedAdmin):
    """Draft lines' amounts are edited in the list by finance and admins (through
    plan_line_set, so an approved plan refuses it)."""

    organization_path = "plan__organization"
    list_display = ("id", "plan", "kind", "team", "member", "name", "baseline", "amount")
    list_filter = (("plan", admin.RelatedOnlyFieldListFilter), "kind")
    list_editable = ("amount",)
    # Only the amount is edited (through plan_line_set); editable foreign keys would also list
    # every organization's plans, teams and members as choices.
    readonly_fields = ("plan", "kind", "team", "member", "name", "baseline")

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.none()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        member = member_of(request)
        return member is not None and member.role in ("finance", "admin")

    def save_model(self, request: HttpRequest, obj: PlanLine, form: Any, change: bool) -> None:
        member = member_of(request)
        assert member is not None  # has_change_permission
        try:
            plan_line_set(line=obj, amount=obj.amount, actor=member)
        except DomainError as error:
            messages.error(request, f"Line #{obj.pk}: {error.message} ({error.code})")


@admin.register(RolloverPolicy)
class RolloverPolicyAdmin(OrganizationScopedAdmin):
    """Read by finance and admins; edited by platform operators (with history)."""

    list_display = ("__str__", "organization", "team", "mode", "cap_share", "cap_amount")
    editable_by_superuser = True

    def scope_for_manager(self, queryset: QuerySet[Any], team_ids: set[int], member: Member) -> Any:
        return queryset.filter(team_id__in=team_ids)
