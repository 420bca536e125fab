"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a queue per request)."""

from __future__ import annotations

import logging
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medical_notes.api.context import RequestContext, current_request, request_id_from
from medical_notes.api.responses import TrackedSend, send_json
from medical_notes.audit import AuditTrail

log = logging.getLogger("medical_notes.access")


class RequestContextMiddleware:
    """Outermost layer: gives each request its id (X-Request-ID, echoed when valid, else generated),
    records the audit event a handler marked, and logs one line: method, path, status, duration,
    client and request id. Never bodies, query strings or other headers."""

    def __init__(self, app: ASGIApp, audit: AuditTrail, default_client: str) -> None:
        self.app = app
        self.audit = audit
        self.default_client = default_client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value
                break
        context = RequestContext(request_id_from(incoming), self.default_client)
        context_token = current_request.set(context)
        request_id_header = (b"x-request-id", context.request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        tracked_send = TrackedSend(send_with_id)
        try:
            await self.app(scope, receive, tracked_send)
        finally:
            current_request.reset(context_token)
            status = tracked_send.status or 500
            event = context.audit
            if event is not None and not event.recorded:
                self.audit.record(
                    client=context.client,
                    action=event.action,
                    document_id=event.document_id,
                    status=status,
                    request_id=context.request_id,
                )
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %d %.1fms client=%s request_id=%s",
                    scope["method"],
                    scope["path"],
                    status,
                    (time.perf_counter() - started) * 1000,
                    context.client,
                    context.request_id,
                )


class BodyTooLarge(HTTPException):
    """Raised from receive(); an HTTPException so FastAPI's body parsing passes it through as a 413."""

    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_body_bytes} bytes")


class BodySizeLimitMiddleware:
    """413 for bodies over the limit: at once from Content-Length, or while a chunked body streams in."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_json(send, 400, {"detail": "invalid Content-Length header"})
                    return
                if declared > limit:
                    await self._reject(send)
                    return
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        tracked_send = TrackedSend(send)
        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if tracked_send.started:
                raise
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        await send_json(
            send,
            413,
            {"detail": f"request body larger than {self.max_body_bytes} bytes"},
            [(b"connection", b"close")],
        )
