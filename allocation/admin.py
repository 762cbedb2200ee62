"""Transfer requests in Django admin: managers approve and reject, scoped to their teams.

Decisions go through the allocation services (the same rules as the API); a refusal is shown
with its code and message and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from allocation.models import TransferRequest, TransferRequestStatus
from allocation.rules import member_can_decide
from allocation.services import transfer_request_approve, transfer_request_reject
from budgets.admin import OrganizationScopedAdmin, member_of
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
