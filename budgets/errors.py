"""Errors of the budgets layer (all DomainError: a stable code and a human message)."""

from __future__ import annotations

from ledger.errors import DomainError


class BudgetError(DomainError):
    code = "budget_error"


class InvalidInputError(BudgetError):
    code = "invalid_input"
    default_message = "The request is not valid."


class NotAllowedError(BudgetError):
    code = "not_allowed"
    default_message = "You are not allowed to do that."


class CrossOrganizationError(BudgetError):
    code = "cross_organization"
    default_message = "Those objects belong to different organizations."


class PeriodNotOpenError(BudgetError):
    code = "period_not_open"
    default_message = "The period is not open."


class UnknownModelError(BudgetError):
    code = "unknown_model"
    default_message = "The model is not on the price card."


class NotFoundError(BudgetError):
    code = "not_found"
    default_message = "No such object."


class InvalidStateError(BudgetError):
    code = "invalid_state"
    default_message = "The authorization is not in a state that allows this."


class SpendSyncBehindError(BudgetError):
    """Spend entries are further behind the ledger than a request catches up inline: the
    background sync is working through it. Retry shortly."""

    code = "spend_sync_behind"
