"""A real HTTP server on 127.0.0.1 that speaks the OpenAI and Anthropic wire formats.

The official SDKs talk to it exactly as they would to the real services. It records every request
and can be told to fail (401, 429, 500, ...) or to stall past the client's timeout.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_EMBEDDING_DIM = 16
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None when the body was not JSON


@dataclass
class _Failure:
    status: int
    remaining: int | None  # None: every request fails
    retry_after: float | None


def fake_embedding(text: str, dim: int) -> list[float]:
    """Deterministic, L2-normalised hashed bag-of-words vector: texts sharing words are similar."""
    vector = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        index = int.from_bytes(digest[:4], "little") % dim
        vector[index] += 1.0 if digest[4] % 2 == 0 else -1.0
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        vector[0] = 1.0
        return vector
    return [value / norm for value in vector]


def free_port_url() -> str:
    """A local URL on which nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeLLMServer:
    """OpenAI (``/v1/chat/completions``, ``/v1/embeddings``) and Anthropic (``/v1/messages``) fake."""

    def __init__(self, *, reply: str | None = None, embedding_dim: int = DEFAULT_EMBEDDING_DIM) -> None:
        self.reply = reply  # None: "Fake answer from <model>."
        self.embedding_dim = embedding_dim
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._failure: _Failure | None = None
        self._stall_seconds = 0.0
        self._released = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # let stalled handlers finish
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        """What OpenAI clients take as base URL (LLM_BASE_URL / EMBEDDING_BASE_URL)."""
        return f"{self.url}/v1"

    # -- behaviour -------------------------------------------------------------------------------
    def fail(self, status: int, *, times: int | None = None, retry_after: float | None = None) -> None:
        """Answer the next ``times`` requests (all when None) with ``status`` and an error body."""
        with self._lock:
            self._failure = _Failure(status, times, retry_after)

    def stall(self, seconds: float) -> None:
        """Hold every answer for ``seconds`` (or until the server stops) before replying."""
        with self._lock:
            self._stall_seconds = seconds

    def reset(self) -> None:
        with self._lock:
            self._failure = None
            self._stall_seconds = 0.0
            self.requests.clear()

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    # -- used by the handler ---------------------------------------------------------------------
    def _record(self, request: RecordedRequest) -> tuple[_Failure | None, float]:
        with self._lock:
            self.requests.append(request)
            failure = self._failure
            if failure is not None and failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failure = None
            return failure, self._stall_seconds

    def _wait_stall(self, seconds: float) -> None:
        if seconds > 0:
            self._released.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections do not outlive a test by much

    def log_message(self, format: str, *args: object) -> None:
        return  # keep pytest output clean

    @property
    def fake(self) -> FakeLLMServer:
        return self.server.fake  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        headers = {name.lower(): value for name, value in self.headers.items()}
        failure, stall_seconds = self.fake._record(RecordedRequest("POST", path, headers, body))
        self.fake._wait_stall(stall_seconds)
        try:
            if path not in ("/v1/chat/completions", "/v1/embeddings", "/v1/messages"):
                self._send_error(404, "unknown path", anthropic=False)
            elif failure is not None:
                self._send_failure(failure, headers, anthropic=path == "/v1/messages")
            elif not isinstance(body, dict):
                self._send_error(400, "body must be a JSON object", anthropic=path == "/v1/messages")
            elif path == "/v1/chat/completions":
                self._send_json(200, self._chat_completion(body))
            elif path == "/v1/embeddings":
                self._send_json(200, self._embeddings(body))
            else:
                self._send_json(200, self._message(body))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer

    # -- bodies ----------------------------------------------------------------------------------
    def _reply_text(self, body: dict[str, Any]) -> str:
        return self.fake.reply if self.fake.reply is not None else f"Fake answer from {body.get('model')}."

    def _chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self._reply_text(body)
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_767_225_600,
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": [{"type": "text", "text": self._reply_text(body)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5},
        }

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dim = int(body.get("dimensions") or self.fake.embedding_dim)
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(str(text), dim)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        return {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }

    # -- errors ----------------------------------------------------------------------------------
    def _send_failure(self, failure: _Failure, headers: dict[str, str], *, anthropic: bool) -> None:
        extra: dict[str, str] = {}
        if failure.retry_after is not None:
            extra["retry-after-ms"] = str(int(failure.retry_after * 1000))
            extra["retry-after"] = str(max(1, math.ceil(failure.retry_after)))
        if failure.status == 401:
            # Like real services, echo the key that was sent: the service must not pass it on
            sent = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {sent}"
        else:
            message = f"fake failure with HTTP {failure.status}"
        self._send_error(failure.status, message, anthropic=anthropic, extra_headers=extra)

    def _send_error(
        self,
        status: int,
        message: str,
        *,
        anthropic: bool,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        if anthropic:
            payload: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            payload = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
        self._send_json(status, payload, extra_headers)

    def _send_json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
