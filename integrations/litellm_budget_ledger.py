"""Budget Ledger for the LiteLLM proxy: authorize before every call, settle after it.

Register in the proxy's config (this file beside the config, or on PYTHONPATH)::

    litellm_settings:
      callbacks: litellm_budget_ledger.budget_ledger

Environment:
  BUDGET_LEDGER_URL        e.g. http://ledger:8000
  BUDGET_LEDGER_TOKEN      a gateway token (manage.py create_gateway_token)
  BUDGET_LEDGER_SUBJECT    which identity names the spender: key_alias (default), user_id,
                           team_id, end_user_id, or user (the request body's "user")
  BUDGET_LEDGER_FAIL_OPEN  1 lets calls through when Budget Ledger is unreachable; the default
                           fails closed with 503
  BUDGET_LEDGER_DEFAULT_MAX_TOKENS  reserved output when a request names no max_tokens (4096)

Facts this relies on are in shared/LITELLM.md: the pre-call hook may raise HTTPException(402)
to deny, rewrite data["model"] to downgrade, and stash the authorization id in the request's
metadata to find it again in the success and failure events.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

from integrations.client import AsyncBudgetLedgerClient, Denied, Unreachable

AUTHORIZATION_KEY = "budget_ledger_authorization_id"
MODEL_KEY = "budget_ledger_model"
CHARS_PER_TOKEN = 4  # a conservative estimate of prompt tokens before the call


class BudgetLedgerHook(CustomLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.client = AsyncBudgetLedgerClient(
            os.environ.get("BUDGET_LEDGER_URL", "http://127.0.0.1:8000"),
            token=os.environ.get("BUDGET_LEDGER_TOKEN", ""),
        )
        self.subject_from = os.environ.get("BUDGET_LEDGER_SUBJECT", "key_alias")
        self.fail_open = os.environ.get("BUDGET_LEDGER_FAIL_OPEN", "0") == "1"
        self.default_max_tokens = int(os.environ.get("BUDGET_LEDGER_DEFAULT_MAX_TOKENS", "4096"))

    # --- before the call ---------------------------------------------------------------------

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        subject = self._subject(user_api_key_dict, data)
        metadata = _metadata(data, call_type)
        try:
            held = await self.client.authorize(
                idempotency_key=str(data.get("litellm_call_id") or uuid.uuid4()),
                subject=subject,
                model=str(data.get("model", "")),
                input_tokens=_estimate_input_tokens(data),
                max_output_tokens=_max_tokens(data) or self.default_max_tokens,
                session_id=_session_id(metadata),
                tags=_tags(metadata),
            )
        except Denied as denied:
            raise HTTPException(status_code=402, detail=denied.message) from None
        except Unreachable as error:
            if self.fail_open:
                return data
            raise HTTPException(
                status_code=503, detail=f"Budget Ledger is unreachable: {error.message}"
            ) from None
        data["model"] = held.model  # a downgrade rewrites the model, and says so in held.message
        metadata[AUTHORIZATION_KEY] = held.id
        metadata[MODEL_KEY] = held.model
        return data

    def _subject(self, user_api_key_dict: Any, data: dict[str, Any]) -> str:
        if self.subject_from == "user":
            return str(data.get("user") or "")
        return str(getattr(user_api_key_dict, self.subject_from, None) or data.get("user") or "")

    # --- after the call ----------------------------------------------------------------------

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        await self._settle(kwargs)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        # A call the hook denied has no authorization: nothing to do.
        await self._settle(kwargs, failed=True)

    async def _settle(self, kwargs: dict[str, Any], *, failed: bool = False) -> None:
        found = _find(kwargs)
        if found is None:
            return
        authorization_id, model = found
        usage = _usage(kwargs)
        if failed and usage is None:
            await self.client.void(authorization_id)
            return
        prompt, cached, completion = usage or (0, 0, 0)
        await self.client.settle(
            authorization_id, model=model, input_tokens=prompt,
            cached_input_tokens=min(cached, prompt), output_tokens=completion,
        )  # fmt: skip


def _metadata(data: dict[str, Any], call_type: str) -> dict[str, Any]:
    """The request's metadata dict (litellm_metadata on /v1/messages and /v1/responses)."""
    key = "litellm_metadata" if "litellm_metadata" in data else "metadata"
    metadata = data.get(key)
    if not isinstance(metadata, dict):
        metadata = {}
        data[key] = metadata
    return metadata


def _estimate_input_tokens(data: dict[str, Any]) -> int:
    text = str(data.get("messages") or data.get("input") or data.get("prompt") or "")
    return max(1, len(text) // CHARS_PER_TOKEN)


def _max_tokens(data: dict[str, Any]) -> int | None:
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = data.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _session_id(metadata: dict[str, Any]) -> str | None:
    requester = metadata.get("requester_metadata") or {}
    headers = metadata.get("headers") or {}
    session = requester.get("session_id") or headers.get("x-session-id")
    return str(session)[:200] if session else None


def _tags(metadata: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for name, value in (metadata.get("requester_metadata") or {}).items():
        if isinstance(value, str | int) and name != "session_id" and len(tags) < 19:
            tags[str(name)[:64]] = str(value)[:200]
    litellm_tags = metadata.get("tags") or []
    if litellm_tags:
        tags["litellm_tags"] = ",".join(str(tag) for tag in litellm_tags)[:200]
    return tags


def _find(kwargs: dict[str, Any]) -> tuple[str, str | None] | None:
    params = kwargs.get("litellm_params") or {}
    slo = kwargs.get("standard_logging_object") or {}
    for metadata in (params.get("metadata"), params.get("litellm_metadata"), slo.get("metadata")):
        if isinstance(metadata, dict) and metadata.get(AUTHORIZATION_KEY):
            return str(metadata[AUTHORIZATION_KEY]), metadata.get(MODEL_KEY)
    return None


def _usage(kwargs: dict[str, Any]) -> tuple[int, int, int] | None:
    """(prompt tokens with cached ones included, cached tokens, completion tokens)."""
    slo = kwargs.get("standard_logging_object") or {}
    prompt, completion = slo.get("prompt_tokens"), slo.get("completion_tokens")
    if not prompt and not completion:
        return None
    usage_object = (slo.get("metadata") or {}).get("usage_object") or {}
    details = usage_object.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    return int(prompt or 0), cached, int(completion or 0)


budget_ledger = BudgetLedgerHook()
