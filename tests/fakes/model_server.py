"""A fake model provider on loopback, speaking the OpenAI and Anthropic wire formats.

`POST /v1/chat/completions` answers like OpenAI Chat Completions and `POST /v1/messages` like
Anthropic Messages, so the real SDKs can be pointed at it. Answers are deterministic in the
request (model id and last user message) and contain a fenced unified diff. Failures can be
forced (`fail_next`) or scripted (`script`); scripted ones are decided by a seeded hash of the
raw request body and its attempt number, so a run is reproducible.

Run as a process for benchmarks: `python -m tests.fakes.model_server --port 0 --latency 0.2`
prints `READY <url>` and serves until killed; `GET /_fake/stats` counts what it served.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
STATS_PATH = "/_fake/stats"  # for benchmarks that run the server as a process
_WIRES = {OPENAI_PATH: "openai", ANTHROPIC_PATH: "anthropic"}
# A 200 whose JSON body is cut off mid-way, as from a broken proxy.
_MALFORMED_BODY = b'{"id": "broken", "choices": [{"index": 0, "message": {"content": "trunc'

FailureKind = Literal["status", "timeout", "malformed"]
AnswerFn = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class _Script:
    latency: float = 0.0
    failure_rate: float = 0.0
    failure_statuses: tuple[int, ...] = (429, 500)
    max_consecutive_failures: int | None = None
    seed: int = 0
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    hang_seconds: float = 30.0


@dataclass(frozen=True)
class _Failure:
    kind: FailureKind
    status: int = 500


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # benchmarks open many connections at once
    fake: FakeModelServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, keep-alive adds ~40 ms each.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == STATS_PATH:
            _send_json(self, 200, self.server.fake.stats())
        else:
            _send_json(self, 404, {"error": {"message": "not found", "type": "not_found_error"}})

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeModelServer:
    """An HTTP server in a daemon thread; see the module docstring."""

    def __init__(self, *, latency: float = 0.0, port: int = 0) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._script = _Script(latency=latency)
        self._forced: deque[_Failure] = deque()
        self._answer_fn: AnswerFn | None = None
        self._attempts: dict[str, int] = {}
        self._consecutive_failures: dict[str, int] = {}
        self._requests: list[dict[str, Any]] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> FakeModelServer:
        self._stopping.clear()
        httpd = _HTTPServer(("127.0.0.1", self._port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-model-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers sleeping in latency or a hang
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # Behaviour

    def script(
        self,
        *,
        latency: float | None = None,
        failure_rate: float = 0.0,
        failure_statuses: tuple[int, ...] = (429, 500),
        max_consecutive_failures: int | None = None,
        seed: int = 0,
        timeout_rate: float = 0.0,
        malformed_rate: float = 0.0,
        hang_seconds: float = 30.0,
    ) -> None:
        """Scripted failures; `latency=None` keeps the current latency."""
        if not failure_statuses:
            raise ValueError("failure_statuses must not be empty")
        with self._lock:
            self._script = replace(
                self._script,
                latency=self._script.latency if latency is None else latency,
                failure_rate=failure_rate,
                failure_statuses=tuple(failure_statuses),
                max_consecutive_failures=max_consecutive_failures,
                seed=seed,
                timeout_rate=timeout_rate,
                malformed_rate=malformed_rate,
                hang_seconds=hang_seconds,
            )

    def fail_next(self, n: int, *, status: int = 500, kind: FailureKind = "status") -> None:
        """The next `n` requests fail this way, whatever the script says."""
        if kind not in ("status", "timeout", "malformed"):
            raise ValueError(f"unknown failure kind {kind!r}")
        with self._lock:
            self._forced.extend(_Failure(kind=kind, status=status) for _ in range(n))

    def answer_with(self, fn: AnswerFn | None) -> None:
        """Answer with `fn(request_body)` instead of the default text; None restores it."""
        with self._lock:
            self._answer_fn = fn

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of every request seen: path, model, body, status, fingerprint, at, ..."""
        with self._lock:
            return list(self._requests)

    def successful_answers(self) -> int:
        return int(self.stats()["successful_answers"])

    def stats(self) -> dict[str, Any]:
        with self._lock:
            failures = Counter(r["failure"] for r in self._requests if r["failure"])
            return {
                "requests": len(self._requests),
                "successful_answers": sum(1 for r in self._requests if r["failure"] is None),
                "failures": dict(failures),
            }

    # Serving

    def _handle(self, handler: _Handler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path = urlsplit(handler.path).path
        fingerprint = hashlib.sha256(raw).hexdigest()
        wire = _WIRES.get(path)
        body, problem = _parse_body(raw, wire)
        record: dict[str, Any] = {
            "path": path,
            "model": body.get("model") if body else None,
            "body": body,
            "status": 200,
            "fingerprint": fingerprint,
            "at": time.time(),
            "failure": None,
            "headers": {k.lower(): v for k, v in handler.headers.items()},
        }
        if wire is None or problem is not None:
            status = 404 if wire is None else 400
            self._log(record, status=status, failure="status")
            _send_json(handler, status, _error_body(wire, status, problem or f"no route {path}"))
            return

        failure, script, answer_fn = self._decide(fingerprint)
        if self._stopping.wait(script.latency):
            handler.close_connection = True
            return
        if failure is not None and failure.kind == "status":
            self._log(record, status=failure.status, failure="status")
            _send_failure(handler, wire, failure.status, record["headers"])
            return
        self._log(record, status=200, failure=failure.kind if failure else None)
        if failure is not None and failure.kind == "malformed":
            _send_raw(handler, 200, _MALFORMED_BODY, {})
            return
        # A hang answers normally, but only after the client has given up.
        if failure is not None and self._stopping.wait(script.hang_seconds):
            handler.close_connection = True
            return
        payload, headers = _answer(wire, body, (answer_fn or default_answer)(body))
        _send_json(handler, 200, payload, headers)

    def _decide(self, fingerprint: str) -> tuple[_Failure | None, _Script, AnswerFn | None]:
        with self._lock:
            script = self._script
            attempt = self._attempts.get(fingerprint, 0)
            self._attempts[fingerprint] = attempt + 1
            if self._forced:
                failure: _Failure | None = self._forced.popleft()
            else:
                failure = _scripted_failure(script, fingerprint, attempt)
                cap = script.max_consecutive_failures
                if cap is not None and self._consecutive_failures.get(fingerprint, 0) >= cap:
                    failure = None
            if failure is None:
                self._consecutive_failures[fingerprint] = 0
            else:
                self._consecutive_failures[fingerprint] = (
                    self._consecutive_failures.get(fingerprint, 0) + 1
                )
            return failure, script, self._answer_fn

    def _log(self, record: dict[str, Any], *, status: int, failure: str | None) -> None:
        # Logged before the response is written, so a client that got its answer sees the record.
        record["status"] = status
        record["failure"] = failure
        with self._lock:
            self._requests.append(record)


def _scripted_failure(script: _Script, fingerprint: str, attempt: int) -> _Failure | None:
    digest = hashlib.sha256(f"{script.seed}:{fingerprint}:{attempt}".encode()).digest()
    roll = int.from_bytes(digest[:8], "big") / 2**64
    if roll < script.timeout_rate:
        return _Failure(kind="timeout")
    roll -= script.timeout_rate
    if roll < script.malformed_rate:
        return _Failure(kind="malformed")
    roll -= script.malformed_rate
    if roll < script.failure_rate:
        statuses = script.failure_statuses
        return _Failure(kind="status", status=statuses[digest[8] % len(statuses)])
    return None


def _parse_body(raw: bytes, wire: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON body and, if it is not a valid request, why."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None, "the body is not JSON"
    if not isinstance(body, dict):
        return None, "the body is not a JSON object"
    if not isinstance(body.get("model"), str):
        return body, "model: field required"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return body, "messages: a non-empty list is required"
    if wire == "anthropic" and not isinstance(body.get("max_tokens"), int):
        return body, "max_tokens: field required"
    return body, None


def _text_of(content: object) -> str:
    """Text of a message content: a string, or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def default_answer(body: dict[str, Any]) -> str:
    """A short explanation and a valid unified diff, both depending on model and last prompt."""
    model = str(body.get("model"))
    digest = hashlib.sha256(f"{model}\n{_last_user_text(body)}".encode()).hexdigest()[:12]
    path = f"src/module_{digest[:6]}.py"
    return (
        f"The handler returned None for every request; it now builds a response ({digest}).\n"
        "\n"
        "```diff\n"
        f"--- a/{path}\n"
        f"+++ b/{path}\n"
        "@@ -1,2 +1,3 @@\n"
        " def handle(request):\n"
        "-    return None\n"
        f"+    # answer {digest}\n"
        "+    return respond(request)\n"
        "```\n"
    )


def _count_words(body: dict[str, Any]) -> int:
    texts = [_text_of(m.get("content")) for m in body["messages"] if isinstance(m, dict)]
    texts.append(_text_of(body.get("system")))
    return sum(len(t.split()) for t in texts)


def _answer(wire: str, body: dict[str, Any], text: str) -> tuple[dict[str, Any], dict[str, str]]:
    input_tokens, output_tokens = _count_words(body), len(text.split())
    request_id = f"req_{uuid.uuid4().hex}"
    if wire == "openai":
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }
        return completion, {"x-request-id": request_id}
    message = {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    return message, {"request-id": request_id}


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _error_body(wire: str | None, status: int, message: str) -> dict[str, Any]:
    error_type = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    if wire == "anthropic":
        return {"type": "error", "error": {"type": error_type, "message": message}}
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def _send_failure(
    handler: BaseHTTPRequestHandler, wire: str, status: int, request_headers: dict[str, str]
) -> None:
    message = "injected failure"
    if status == 401:
        # Like some gateways, echo the credential, so tests can check that it gets redacted.
        credential = request_headers.get("x-api-key") or request_headers.get("authorization")
        message = f"invalid credential {credential}"
    headers = {"Retry-After": "1"} if status == 429 else {}
    _send_json(handler, status, _error_body(wire, status, message), headers)


def _send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    _send_raw(handler, status, json.dumps(payload).encode(), headers or {})


def _send_raw(
    handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str]
) -> None:
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True  # the client gave up, e.g. after its timeout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--failure-statuses", default="429,500", help="comma-separated")
    parser.add_argument("--max-consecutive-failures", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)

    server = FakeModelServer(latency=args.latency, port=args.port)
    server.script(
        failure_rate=args.failure_rate,
        failure_statuses=tuple(int(s) for s in args.failure_statuses.split(",")),
        max_consecutive_failures=args.max_consecutive_failures,
        seed=args.seed,
        timeout_rate=args.timeout_rate,
        malformed_rate=args.malformed_rate,
        hang_seconds=args.hang_seconds,
    )
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"READY {server.url}", flush=True)
    while not stopped.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
