"""Errors of the allocation layer."""

from __future__ import annotations

from budgets.errors import BudgetError


class AllocationError(BudgetError):
    code = "allocation_error"


class RequestNotPendingError(AllocationError):
    code = "request_not_pending"
    default_message = "The request is no longer pending."


class SelfApprovalError(AllocationError):
    code = "self_approval"
    default_message = "Nobody approves a request they made."


class ReasonRequiredError(AllocationError):
    code = "reason_required"
    default_message = "A rejection needs a reason."


class NotAdjacentError(AllocationError):
    code = "not_adjacent"
    default_message = "Allocations move budget one step up or down the tree."


class PeriodNotEndedError(AllocationError):
    code = "period_not_ended"
    default_message = "The period has not ended yet in the organization's timezone."


class PeriodNotStartedError(AllocationError):
    code = "period_not_started"
    default_message = "The period has not started yet in the organization's timezone."


class PeriodStateError(AllocationError):
    code = "period_state"
    default_message = "The period is not in a state that allows this."


class ExemptionNotDecidableError(AllocationError):
    code = "exemption_not_pending"
    default_message = "The exemption is no longer pending."


class ExemptionStateError(AllocationError):
    code = "exemption_state"
    default_message = "The exemption is not in a state that allows this."


class PlanNotDraftError(AllocationError):
    code = "plan_not_draft"
    default_message = "An approved plan is immutable."


class PlanTotalTooSmallError(AllocationError):
    code = "plan_total_too_small"
    default_message = "The organization total is below the sum of the plan's lines."
