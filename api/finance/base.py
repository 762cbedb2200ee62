"""What every people-facing endpoint shares: who is asking, and Idempotency-Key on POST.

Every write endpoint is a thin view on ``MemberApi`` whose ``post`` is wrapped in
``@idempotent``: authenticate, scope, validate, call one service.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from api.gateway.serializers import ErrorOutputSerializer
from api.models import IdempotentAnswer
from api.tokens import PersonalTokenAuthentication
from budgets.errors import InvalidInputError, NotAllowedError
from budgets.models import Member
from ledger.errors import IdempotencyConflictError

# The token first: its challenge makes a missing credential 401 (a session alone would be 403).
AUTHENTICATION = (PersonalTokenAuthentication, SessionAuthentication)

IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Retry-safe POST: the same key with the same request replays the first "
    "answer (header Idempotent-Replayed: true); with a different request it is refused (409).",
)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Documented error responses: every error has a stable ``code`` and a ``message``."""
    described = {
        400: "invalid, invalid_input, reason_required",
        401: "not_authenticated, authentication_failed",
        402: "insufficient_funds",
        403: "not_a_member, not_allowed, self_approval",
        404: "not_found",
        409: "idempotency_conflict, request_not_pending, exemption_not_pending, "
        "exemption_state, plan_not_draft, plan_total_too_small, period_state, period_not_open",
    }
    return {
        code: OpenApiResponse(ErrorOutputSerializer, description=described[code]) for code in codes
    }


READ_ERRORS = errors(400, 401, 403, 404)
WRITE_ERRORS = errors(400, 401, 402, 403, 404, 409)


class NotAMemberError(NotAllowedError):
    code = "not_a_member"
    default_message = "Only members of an organization use this API."


class MemberApi(APIView):
    """A person's endpoint: signed in (session) or with a personal API token, and an active
    member of an organization."""

    authentication_classes = AUTHENTICATION
    permission_classes = (IsAuthenticated,)

    def member(self, request: Request) -> Member:
        cached: Member | None = getattr(request, "_member", None)
        if cached is not None:
            return cached
        member = (
            Member.objects.select_related("organization", "user")
            .filter(user_id=_user_id(request), is_active=True)
            .first()
        )
        if member is None:
            raise NotAMemberError()
        request._member = member  # type: ignore[attr-defined]
        return member


def _user_id(request: Request) -> int:
    return int(request.user.pk or 0)


def _digest(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, cls=JSONEncoder)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(answer: IdempotentAnswer, digest: str, key: str) -> Response:
    if answer.request_digest != digest:
        raise IdempotencyConflictError(idempotency_key=key)
    return Response(answer.body, status=answer.status_code, headers={"Idempotent-Replayed": "true"})


def idempotent(post: Callable[..., Response]) -> Callable[..., Response]:
    """Honour Idempotency-Key on a POST. The key is claimed (its row inserted) before the view
    runs, in the view's transaction: a concurrent request with the same key waits on the
    unique index until the first commits, then replays its answer instead of running the view
    again. A failure (which changed nothing) releases the claim, so it may be retried."""

    @wraps(post)
    def wrapper(view: MemberApi, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return post(view, request, *args, **kwargs)
        if not 1 <= len(key) <= 200:
            raise InvalidInputError("An Idempotency-Key has 1 to 200 characters.")
        digest = _digest(request)
        kept = IdempotentAnswer.objects.filter(user_id=_user_id(request), key=key).first()
        if kept is not None:
            return _replay(kept, digest, key)
        try:
            with transaction.atomic():
                # The claim: uncommitted, so no one replays it before the answer is in it.
                answer = IdempotentAnswer.objects.create(
                    user_id=_user_id(request), key=key, request_digest=digest, status_code=0,
                    body={},
                )  # fmt: skip
                response = post(view, request, *args, **kwargs)
                answer.status_code = response.status_code
                answer.body = json.loads(json.dumps(response.data, cls=JSONEncoder))
                answer.save(update_fields=["status_code", "body"])
        except IntegrityError:
            # The same key raced us and won; nothing of ours ran: answer as the winner did.
            winner = IdempotentAnswer.objects.filter(user_id=_user_id(request), key=key).first()
            if winner is None:
                raise
            return _replay(winner, digest, key)
        return response

    return wrapper
