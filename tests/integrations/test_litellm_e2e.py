"""End to end: the real LiteLLM proxy with our plugin, a stub upstream, the real service.

Needs a LiteLLM venv (pinned litellm[proxy]==1.106.2, see shared/LITELLM.md) named by
LITELLM_VENV; `make test` points it at ~/.cache/budget-ledger/litellm-1.106.2 and `.ci/run`
installs it there once. Without it the test is skipped and says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from allocation.demo import DOLLAR, DemoOrganization
from allocation.services import pool_allocate
from budgets.models import Authorization
from budgets.selectors import pool_balance
from budgets.services import gateway_token_create
from ledger.selectors import ledger_verify

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("LITELLM_VENV", "/nonexistent"))
SUBJECT = "platform-eng1-claude-code"
MASTER_KEY = "sk-e2e-master"
# What the stub upstream reports for every call.
PROMPT, CACHED, COMPLETION = 1_000, 400, 200
# claude-sonnet-4-5: 600 x $3/M + 400 x $0.30/M + 200 x $15/M = $0.00492
COST_PER_CALL = 4_920


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class StubUpstream(BaseHTTPRequestHandler):
    """An OpenAI-compatible upstream that answers with a fixed usage block."""

    usage = {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION,
             "total_tokens": PROMPT + COMPLETION,
             "prompt_tokens_details": {"cached_tokens": CACHED}}  # fmt: skip

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = body.get("model", "stub")
        if body.get("stream"):
            chunks = [
                {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"},
                              "finish_reason": None}]},
                {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": [], "usage": self.usage},
            ]  # fmt: skip
            payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            self._send(payload.encode(), "text/event-stream")
            return
        answer = {
            "id": "c1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                         "finish_reason": "stop"}],
            "usage": self.usage,
        }  # fmt: skip
        self._send(json.dumps(answer).encode(), "application/json")

    def _send(self, payload: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), StubUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@contextlib.contextmanager
def litellm_proxy(*, ledger_url: str, token: str, upstream: str, folder: Path) -> Iterator[str]:
    """The real LiteLLM proxy with our plugin, pointed at ``ledger_url``; stopped after."""
    if not (VENV / "bin" / "litellm").exists():
        pytest.skip(f"no LiteLLM venv at {VENV} (set LITELLM_VENV; .ci/run installs it)")
    shutil.copy(ROOT / "integrations" / "litellm_budget_ledger.py", folder)
    (folder / "config.yaml").write_text(
        "model_list:\n"
        "  - model_name: claude-sonnet-4-5\n"
        "    litellm_params:\n"
        "      model: openai/claude-sonnet-4-5\n"
        f"      api_base: {upstream}\n"
        "      api_key: stub\n"
        "litellm_settings:\n"
        "  callbacks: litellm_budget_ledger.budget_ledger\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )
    port = free_port()
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT),
        "BUDGET_LEDGER_URL": ledger_url, "BUDGET_LEDGER_TOKEN": token,
        "BUDGET_LEDGER_SUBJECT": "user", "BUDGET_LEDGER_DEFAULT_MAX_TOKENS": "1000",
    }  # fmt: skip
    log_path = folder / "litellm.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(VENV / "bin" / "litellm"), "--config", "config.yaml", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_live(url, process, log_path)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=20)


def _wait_until_live(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("LiteLLM exited: " + log_path.read_text()[-3000:])
        try:
            if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail("LiteLLM did not start: " + log_path.read_text()[-3000:])


@pytest.fixture
def proxy(live_server: Any, acme: DemoOrganization, upstream: str, tmp_path: Path) -> Iterator[str]:
    _, token = gateway_token_create(organization=acme.organization, name="litellm")
    with litellm_proxy(
        ledger_url=live_server.url, token=token, upstream=upstream, folder=tmp_path
    ) as url:
        yield url


def call(proxy: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": "claude-sonnet-4-5", "user": SUBJECT, "max_tokens": 1000, "stream": stream,
            "messages": [{"role": "user", "content": "Write a haiku about budgets."}]}  # fmt: skip
    return httpx.post(f"{proxy}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip


def settled_count() -> int:
    return Authorization.objects.filter(status="settled").count()


def wait_for_settles(expected: int) -> None:
    deadline = time.monotonic() + 20
    while settled_count() < expected and time.monotonic() < deadline:
        time.sleep(0.2)


def test_calls_pass_until_the_pool_is_spent_then_get_our_402(
    proxy: str, acme: DemoOrganization
) -> None:
    pool = acme.pools["platform-eng1"]
    # Leave $0.05: room for a handful of calls that each reserve about $0.015.
    pool_allocate(source=pool, target=acme.pools["platform"], amount=1_000 * DOLLAR - 50_000,
                  actor=acme.members["platform-lead"])  # fmt: skip

    answers: list[httpx.Response] = []
    for index in range(20):
        response = call(proxy, stream=index % 3 == 1)
        answers.append(response)
        if response.status_code == 200:
            wait_for_settles(sum(1 for a in answers if a.status_code == 200))
        else:
            break

    passed = [a for a in answers if a.status_code == 200]
    denied = answers[-1]
    assert len(passed) >= 3
    assert any(index % 3 == 1 for index in range(len(passed)))  # a streamed call passed too
    assert denied.status_code == 402, denied.text
    assert "The pool's budget is exhausted for this call." in denied.text
    wait_for_settles(len(passed))
    assert settled_count() == len(passed)
    balance = pool_balance(pool=pool)
    assert balance.spent == len(passed) * COST_PER_CALL
    assert balance.reserved == 0
    assert ledger_verify().problems == []


def test_an_unreachable_ledger_fails_closed_with_503(upstream: str, tmp_path: Path) -> None:
    with litellm_proxy(
        ledger_url="http://127.0.0.1:9", token="t", upstream=upstream, folder=tmp_path
    ) as url:
        response = call(url)

    assert response.status_code == 503, response.text
    assert "Budget Ledger is unreachable" in response.text
