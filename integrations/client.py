"""A small typed client for the gateway contract, sync and async (httpx).

    client = BudgetLedgerClient("http://ledger:8000", token="blg_…")
    held = client.authorize(idempotency_key=call_id, subject="ada-claude-code",
                            model="claude-sonnet-4-5", input_tokens=12_000, max_output_tokens=2_000)
    …call the model with held.model (it may be a downgrade)…
    client.settle(held.id, input_tokens=11_800, cached_input_tokens=9_000, output_tokens=640)

A denial raises ``Denied`` (HTTP 402) with its code, message and the pool's available money;
every other error raises ``BudgetLedgerError`` with the service's ``code`` and ``message``.
Money is ``Decimal``, never float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class BudgetLedgerError(Exception):
    """An error answer (or no answer) from Budget Ledger."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class Unreachable(BudgetLedgerError):
    """No answer: connection refused, timeout, or a 5xx."""


class Denied(BudgetLedgerError):
    """402: the call is not allowed; ``code`` says why."""

    def __init__(self, code: str, message: str, available: Decimal, authorization_id: str) -> None:
        super().__init__(402, code, message)
        self.available, self.authorization_id = available, authorization_id


@dataclass(frozen=True)
class Authorization:
    id: str
    decision: str  # "allow" or "downgrade"
    model: str  # the model to call
    requested_model: str
    reserved: Decimal
    available: Decimal
    expires_at: str
    message: str


@dataclass(frozen=True)
class Settlement:
    id: str
    status: str  # settled, settled_late, voided
    charged: Decimal
    released: Decimal
    overage: Decimal
    available: Decimal | None


def _amount(money: dict[str, str] | None) -> Decimal:
    return Decimal(money["amount"]) if money else Decimal(0)


def _authorize_body(**fields: Any) -> dict[str, Any]:
    body = {key: value for key, value in fields.items() if value is not None}
    if "amount" in body:
        body["amount"] = str(body["amount"])
    return body


def _settle_body(**fields: Any) -> dict[str, Any]:
    return _authorize_body(**fields)


def _parse(response: httpx.Response) -> dict[str, Any]:
    try:
        data: dict[str, Any] = response.json()
    except ValueError:
        data = {}
    if response.status_code >= 500:
        raise Unreachable(response.status_code, "unavailable", response.text[:200])
    if response.status_code == 402:
        raise Denied(
            str(data.get("code", "denied")), str(data.get("message", "")),
            _amount(data.get("available")), str(data.get("id", "")),
        )  # fmt: skip
    if response.status_code >= 400:
        raise BudgetLedgerError(
            response.status_code, str(data.get("code", "error")), str(data.get("message", ""))
        )
    return data


def _authorization(data: dict[str, Any]) -> Authorization:
    return Authorization(
        id=data["id"], decision=data["decision"], model=data["model"],
        requested_model=data["requested_model"], reserved=_amount(data["reserved"]),
        available=_amount(data["available"]), expires_at=data["expires_at"],
        message=data.get("message", ""),
    )  # fmt: skip


def _settlement(data: dict[str, Any]) -> Settlement:
    return Settlement(
        id=data["id"], status=data["status"], charged=_amount(data.get("charged")),
        released=_amount(data.get("released")), overage=_amount(data.get("overage")),
        available=_amount(data["available"]) if "available" in data else None,
    )  # fmt: skip


class BudgetLedgerClient:
    """Blocking client. One instance per process; it keeps connections alive."""

    def __init__(self, base_url: str, *, token: str, timeout: httpx.Timeout = DEFAULT_TIMEOUT):
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return _parse(self._http.post(path, json=body))
        except httpx.HTTPError as error:
            raise Unreachable(0, "unreachable", str(error)) from error

    def authorize(
        self, *, idempotency_key: str, subject: str, model: str, input_tokens: int = 0,
        max_output_tokens: int | None = None, amount: Decimal | None = None,
        session_id: str | None = None, tags: dict[str, str] | None = None,
        ttl_seconds: int | None = None,
    ) -> Authorization:  # fmt: skip
        """Reserve for a call. Raises Denied, BudgetLedgerError, Unreachable."""
        body = _authorize_body(
            idempotency_key=idempotency_key, subject=subject, model=model,
            input_tokens=input_tokens, max_output_tokens=max_output_tokens, amount=amount,
            session_id=session_id, tags=tags, ttl_seconds=ttl_seconds,
        )  # fmt: skip
        return _authorization(self._post("/api/v1/authorizations", body))

    def settle(
        self, authorization_id: str, *, model: str | None = None, input_tokens: int = 0,
        cached_input_tokens: int = 0, cache_write_tokens: int = 0, output_tokens: int = 0,
        amount: Decimal | None = None,
    ) -> Settlement:  # fmt: skip
        """Charge the real usage. Raises BudgetLedgerError, Unreachable."""
        body = _settle_body(
            model=model, input_tokens=input_tokens, cached_input_tokens=cached_input_tokens,
            cache_write_tokens=cache_write_tokens, output_tokens=output_tokens, amount=amount,
        )  # fmt: skip
        return _settlement(self._post(f"/api/v1/authorizations/{authorization_id}/settle", body))

    def void(self, authorization_id: str) -> Settlement:
        """Release without spending. Raises BudgetLedgerError, Unreachable."""
        return _settlement(self._post(f"/api/v1/authorizations/{authorization_id}/void"))

    def close(self) -> None:
        self._http.close()


class AsyncBudgetLedgerClient:
    """The same calls for asyncio (the LiteLLM proxy's hooks are async)."""

    def __init__(self, base_url: str, *, token: str, timeout: httpx.Timeout = DEFAULT_TIMEOUT):
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return _parse(await self._http.post(path, json=body))
        except httpx.HTTPError as error:
            raise Unreachable(0, "unreachable", str(error)) from error

    async def authorize(
        self, *, idempotency_key: str, subject: str, model: str, input_tokens: int = 0,
        max_output_tokens: int | None = None, amount: Decimal | None = None,
        session_id: str | None = None, tags: dict[str, str] | None = None,
        ttl_seconds: int | None = None,
    ) -> Authorization:  # fmt: skip
        """Reserve for a call. Raises Denied, BudgetLedgerError, Unreachable."""
        body = _authorize_body(
            idempotency_key=idempotency_key, subject=subject, model=model,
            input_tokens=input_tokens, max_output_tokens=max_output_tokens, amount=amount,
            session_id=session_id, tags=tags, ttl_seconds=ttl_seconds,
        )  # fmt: skip
        return _authorization(await self._post("/api/v1/authorizations", body))

    async def settle(
        self, authorization_id: str, *, model: str | None = None, input_tokens: int = 0,
        cached_input_tokens: int = 0, cache_write_tokens: int = 0, output_tokens: int = 0,
        amount: Decimal | None = None,
    ) -> Settlement:  # fmt: skip
        """Charge the real usage. Raises BudgetLedgerError, Unreachable."""
        body = _settle_body(
            model=model, input_tokens=input_tokens, cached_input_tokens=cached_input_tokens,
            cache_write_tokens=cache_write_tokens, output_tokens=output_tokens, amount=amount,
        )  # fmt: skip
        path = f"/api/v1/authorizations/{authorization_id}/settle"
        return _settlement(await self._post(path, body))

    async def void(self, authorization_id: str) -> Settlement:
        """Release without spending. Raises BudgetLedgerError, Unreachable."""
        return _settlement(await self._post(f"/api/v1/authorizations/{authorization_id}/void"))

    async def aclose(self) -> None:
        await self._http.aclose()
