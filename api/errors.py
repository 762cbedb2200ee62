"""The one exception handler: domain errors become 4xx with a stable code and a message."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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
    AccountNotFoundError: status.HTTP_404_NOT_FOUND,
    TransferNotFoundError: status.HTTP_404_NOT_FOUND,
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map DomainError to HTTP; everything else goes to DRF's handler with a stable shape."""
    if isinstance(exc, DomainError):
        http_status = next(
            (code for error, code in _STATUS_BY_ERROR.items() if isinstance(exc, error)),
            status.HTTP_400_BAD_REQUEST,
        )
        return Response({"code": exc.code, "message": exc.message}, status=http_status)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "code" not in response.data:
        detail = response.data.get("detail")
        code = getattr(detail, "code", None) or "invalid"
        message = str(detail) if detail is not None else "The request is invalid."
        response.data = {"code": code, "message": message, "errors": response.data}
    return response
