"""The one exception handler: every error is JSON with a stable ``code`` and a ``message``.

Domain errors map to 4xx by type; DRF's own (validation, authentication, parsing) keep their
status and get the same shape, with per-field messages under ``field_errors``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from allocation.errors import (
    ExemptionNotDecidableError,
    ExemptionStateError,
    PeriodStateError,
    PlanNotDraftError,
    PlanTotalTooSmallError,
    RequestNotPendingError,
    SelfApprovalError,
)
from budgets.errors import (
    InvalidStateError,
    NotAllowedError,
    NotFoundError,
    PeriodNotOpenError,
    SpendSyncBehindError,
    UnknownModelError,
)
from ledger.errors import (
    AccountNotFoundError,
    DomainError,
    IdempotencyConflictError,
    InsufficientFundsError,
    TransferNotFoundError,
)

_STATUS_BY_ERROR: dict[type[DomainError], int] = {
    InsufficientFundsError: status.HTTP_402_PAYMENT_REQUIRED,
    IdempotencyConflictError: status.HTTP_409_CONFLICT,
    InvalidStateError: status.HTTP_409_CONFLICT,
    NotFoundError: status.HTTP_404_NOT_FOUND,
    AccountNotFoundError: status.HTTP_404_NOT_FOUND,
    TransferNotFoundError: status.HTTP_404_NOT_FOUND,
    UnknownModelError: status.HTTP_422_UNPROCESSABLE_ENTITY,
    NotAllowedError: status.HTTP_403_FORBIDDEN,
    SelfApprovalError: status.HTTP_403_FORBIDDEN,
    RequestNotPendingError: status.HTTP_409_CONFLICT,
    # What the object's (or its period's) state no longer allows: retrying will not help.
    ExemptionNotDecidableError: status.HTTP_409_CONFLICT,
    ExemptionStateError: status.HTTP_409_CONFLICT,
    PlanNotDraftError: status.HTTP_409_CONFLICT,
    PlanTotalTooSmallError: status.HTTP_409_CONFLICT,
    PeriodStateError: status.HTTP_409_CONFLICT,
    PeriodNotOpenError: status.HTTP_409_CONFLICT,
    # The background sync is working through a backlog: retry (Retry-After says when).
    SpendSyncBehindError: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map an exception raised in a view to the error body every client can rely on."""
    if isinstance(exc, DomainError):
        http_status = next(
            (code for error, code in _STATUS_BY_ERROR.items() if isinstance(exc, error)),
            status.HTTP_400_BAD_REQUEST,
        )
        answer = Response({"code": exc.code, "message": exc.message}, status=http_status)
        if http_status == status.HTTP_503_SERVICE_UNAVAILABLE:
            answer["Retry-After"] = "5"
        return answer
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"code": "too_large", "message": "The request body is too large."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, exceptions.ValidationError):
        return Response(
            {"code": "invalid", "message": "The request is invalid.", "field_errors": exc.detail},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.ParseError):
        return Response(
            {"code": "invalid", "message": f"The body is not valid JSON: {exc.detail}"},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        return Response(
            {"code": "not_found", "message": "Not found."}, status=status.HTTP_404_NOT_FOUND
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = {"code": code, "message": str(exc.detail)}
    return response


@csrf_exempt  # it changes nothing; a POST to a wrong address must get JSON, not a CSRF page
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any /api/ address no route matches: the same JSON error, not Django's HTML page."""
    return JsonResponse({"code": "not_found", "message": "Not found."}, status=404)
