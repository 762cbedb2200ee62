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
