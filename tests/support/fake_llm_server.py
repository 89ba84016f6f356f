"""A small OpenAI-compatible chat server with a scripted queue of answers.

Tests talk to it over real HTTP through litellm, exactly as production talks to a
provider or a local vLLM/Ollama/llama.cpp server, so retries, timeouts, token
accounting and structured-output parsing are exercised end to end.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Union

import pytest

ROLE_MARKER = re.compile(r"archlab role:\s*(\w+)")
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True)
class Answer:
    """A successful completion whose message content is `content` (valid JSON or not).

    `finish_reason="length"` is a reply cut off at the output token limit; `cached_tokens` of
    the prompt tokens were served from the provider's prompt cache (reported as OpenAI does)."""

    content: str
    prompt_tokens: int = 100
    completion_tokens: int = 20
    finish_reason: str = "stop"
    cached_tokens: int = 0


@dataclass(frozen=True)
class HttpError:
    """An HTTP error reply, e.g. 429 with Retry-After, 500, 400."""

    status: int
    retry_after: str | None = None
    message: str = "scripted error"


@dataclass(frozen=True)
class Stall:
    """Hold the request for `seconds` (longer than the client's timeout), then answer `then`."""

    seconds: float
    then: Answer = Answer("{}")


ScriptItem = Union[Answer, HttpError, Stall, Callable[[dict[str, Any]], "ScriptItem"]]


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    body: dict[str, Any]
    role: str | None
    received_at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])


def role_of(body: dict[str, Any]) -> str | None:
    """The agent role named by the `archlab role: <name>` marker in the system prompt."""
    for message in body.get("messages", []):
        if message.get("role") == "system":
            found = ROLE_MARKER.search(str(message.get("content", "")))
            if found:
                return found.group(1)
    return None


class FakeLLMServer:
    """Serves scripted answers on 127.0.0.1 (ephemeral port) from a background thread.

    Answers come from the queue of the request's role when that queue has items,
    otherwise from the shared queue; an empty script answers 400 so a test that
    sends more requests than it scripted fails fast instead of retrying.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str | None, deque[ScriptItem]] = {None: deque()}
        self._received: list[ReceivedRequest] = []
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-llm", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def enqueue(self, *items: ScriptItem, role: str | None = None) -> None:
        with self._lock:
            self._queues.setdefault(role, deque()).extend(items)

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._received)

    def requests_for(self, role: str) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.role == role]

    def pending(self) -> int:
        """Scripted items not yet served (a test can assert its script was used up)."""
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    def start(self) -> "FakeLLMServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases stalled handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_item(self, body: dict[str, Any], path: str) -> ScriptItem | None:
        role = role_of(body)
        with self._lock:
            self._received.append(ReceivedRequest(path, body, role, time.time()))
            queue = self._queues.get(role)
            if not queue:
                queue = self._queues[None]
            return queue.popleft() if queue else None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path not in CHAT_PATHS:
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(raw or b"{}")
                item = server._next_item(body, self.path)
                while callable(item):
                    item = item(body)
                self._serve(item, body)

            def _serve(self, item: ScriptItem | None, body: dict[str, Any]) -> None:
                if item is None:
                    self._send_json(400, _error_body("fake LLM server: no scripted answer left", 400))
                elif isinstance(item, HttpError):
                    headers = {"Retry-After": item.retry_after} if item.retry_after is not None else {}
                    self._send_json(item.status, _error_body(item.message, item.status), headers)
                elif isinstance(item, Stall):
                    if server._stopping.wait(item.seconds):
                        return
                    self._serve(item.then, body)
                else:
                    self._send_json(200, _completion_body(item, body.get("model", "fake")))

            def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to deliver

        return Handler


def _completion_body(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer.content},
             "finish_reason": answer.finish_reason}
        ],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": answer.cached_tokens},
        },
    }


def python_answer(code: str, before: str = "Here is the complete file.", after: str = "") -> Answer:
    """The whole file in one ```python block, with prose around it as chat models write it."""
    return Answer(f"{before}\n\n```python\n{code.rstrip()}\n```\n{after}".strip() + "\n")


def search_replace(*edits: tuple[str, str], before: str = "Two small changes:", fenced: bool = True) -> Answer:
    """SEARCH/REPLACE blocks (search, replace), fenced as Aider's models usually send them."""
    blocks = "".join(f"<<<<<<< SEARCH\n{search.rstrip(chr(10))}\n=======\n{replace.rstrip(chr(10))}\n>>>>>>> REPLACE\n"
                     for search, replace in edits)
    body = f"```python\n{blocks}```\n" if fenced else blocks
    return Answer(f"{before}\n\n{body}")


def cut_off(answer: Answer, keep_fraction: float = 0.6) -> Answer:
    """The same answer stopped part-way by the output token limit (finish_reason "length")."""
    return Answer(answer.content[: int(len(answer.content) * keep_fraction)], answer.prompt_tokens,
                  answer.completion_tokens, finish_reason="length")


def _error_body(message: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "fake_error", "code": status}}


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    """A started server, stopped (and its stalled handlers released) when the test ends."""
    with FakeLLMServer() as server:
        yield server
