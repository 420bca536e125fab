"""A lean path for the busiest requests, in front of FastAPI's routing and dependency machinery.

FastAPI spends about three times the CPU of the work itself (one indexed query, one JSON encode) on
a GET /documents/{id}. This layer serves the successful cases of the high-traffic endpoints with the
same Handlers and request models, and hands everything unusual (bad JSON, invalid fields, other
content types, other paths) to FastAPI unchanged, so error answers and OpenAPI stay FastAPI's.
Authentication and scopes are enforced before this layer (AuthMiddleware wraps it), and the handlers
mark their audit events themselves, so both paths are checked and audited alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medical_notes.api.errors import error_response
from medical_notes.api.handlers import Handlers
from medical_notes.api.middleware import ROUTE_TEMPLATE_KEY
from medical_notes.api.models import MAX_DOCUMENT_ID, DocumentCreate, QuestionRequest
from medical_notes.api.responses import send_json

DOCUMENT_PREFIX = "/documents/"
DOCUMENT_TEMPLATE = "/documents/{document_id}"
# Longer digit strings are out of bigint range anyway; FastAPI answers them with a 422. (int() of
# more than 4300 digits raises, and converting long ones costs quadratic time.)
MAX_DOCUMENT_ID_DIGITS = len(str(MAX_DOCUMENT_ID))


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client went away."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that yields the body already read once more, then defers to the real one."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class FastLane:
    def __init__(self, app: ASGIApp, handlers: Handlers) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = scope["method"]
            path = scope["path"]
            if method == "GET":
                if path == "/health":
                    scope[ROUTE_TEMPLATE_KEY] = path
                    await self._call(scope, receive, send, self.handlers.health)
                    return
                if path.startswith(DOCUMENT_PREFIX):
                    tail = path[len(DOCUMENT_PREFIX) :]
                    if (
                        len(tail) <= MAX_DOCUMENT_ID_DIGITS
                        and tail.isascii()
                        and tail.isdigit()
                        and 1 <= int(tail) <= MAX_DOCUMENT_ID
                    ):
                        scope[ROUTE_TEMPLATE_KEY] = DOCUMENT_TEMPLATE
                        await self._call(scope, receive, send, self.handlers.get_document, int(tail))
                        return
            elif method == "POST" and _is_json(scope):
                if path == "/documents":
                    scope[ROUTE_TEMPLATE_KEY] = path
                    await self._post(scope, receive, send, DocumentCreate, self.handlers.create_document, 201)
                    return
                if path == "/answer_question":
                    scope[ROUTE_TEMPLATE_KEY] = path
                    await self._post(
                        scope, receive, send, QuestionRequest, self.handlers.answer_question, 200
                    )
                    return
        await self.app(scope, receive, send)

    async def _call(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        handler: Callable[..., Awaitable[Any]],
        *args: Any,
        status: int = 200,
    ) -> None:
        try:
            result = await handler(*args)
        except Exception as error:
            response = error_response(error)
            if response is None:
                raise
            await response(scope, receive, send)
            return
        if isinstance(result, tuple):
            status, result = result
        await send_json(send, status, result)

    async def _post(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        model: type[BaseModel],
        handler: Callable[[Any], Awaitable[Any]],
        status: int,
    ) -> None:
        body = await _read_body(receive)
        if body is None:
            return
        try:
            request = model.model_validate_json(body)
        except ValidationError:
            # FastAPI words validation errors (and malformed JSON) its own way: let it answer.
            await self.app(scope, _replay(body, receive), send)
            return
        await self._call(scope, receive, send, handler, request, status=status)
