"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a queue per request)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medical_notes.api.context import RequestContext, current_request, request_id_from
from medical_notes.api.responses import TrackedSend, send_json
from medical_notes.audit import AuditTrail
from medical_notes.metrics import Metrics

log = logging.getLogger("medical_notes.access")

# The status logged and counted for a request whose client went away before the response was sent
# (nginx's "client closed request").
CLIENT_DISCONNECTED = 499
# The ASGI scope key where the fast lane names the route template it served.
ROUTE_TEMPLATE_KEY = "medical_notes.route"
UNMATCHED_ROUTE = "unmatched"
MAX_LOGGED_PATH_CHARS = 200
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The path template that served (or would serve) this request, never the raw path."""
    route = scope.get("route")
    if isinstance(route, BaseRoute) and hasattr(route, "path"):
        return route.path
    template = scope.get(ROUTE_TEMPLATE_KEY)
    if template is not None:
        return template
    # Answered before routing (401, 413) or not found: look it up, for the label only.
    for candidate in routes:
        included = getattr(candidate, "original_router", None)  # FastAPI's include_router()
        if included is not None:
            template = route_template(scope, included.routes)
            if template != UNMATCHED_ROUTE:
                return template
            continue
        match, _ = candidate.matches(scope)
        if match is not Match.NONE and hasattr(candidate, "path"):
            return candidate.path
    return UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Outermost layer: gives each request its id (X-Request-ID, echoed when valid, else generated),
    records the audit event a handler marked, counts the request in the metrics by route template,
    and logs one line: method, path, status, duration, client and request id. Never bodies, query
    strings or other headers. A client that disconnected before its answer was sent is logged and
    counted as 499, not as what the app tried to answer."""

    def __init__(
        self,
        app: ASGIApp,
        audit: AuditTrail,
        default_client: str,
        metrics: Metrics,
        routes: Sequence[BaseRoute],
    ) -> None:
        self.app = app
        self.audit = audit
        self.default_client = default_client
        self.metrics = metrics
        self.routes = routes

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
        disconnected = False

        async def watched_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect" and not tracked_send.started:
                disconnected = True
            return message

        # Only requests with a body wait on receive() (GET /documents/{id}, the busiest, does not).
        has_body = scope["method"] in METHODS_WITH_BODY
        try:
            await self.app(scope, watched_receive if has_body else receive, tracked_send)
        finally:
            current_request.reset(context_token)
            seconds = time.perf_counter() - started
            status = CLIENT_DISCONNECTED if disconnected else tracked_send.status or 500
            self.metrics.observe_request(scope["method"], route_template(scope, self.routes), status, seconds)
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
                path = scope["path"]
                if len(path) > MAX_LOGGED_PATH_CHARS:
                    path = path[:MAX_LOGGED_PATH_CHARS] + "..."
                peer = scope.get("client")
                log.info(
                    "%s %s %d %.1fms client=%s addr=%s request_id=%s%s",
                    scope["method"],
                    path,
                    status,
                    seconds * 1000,
                    context.client,
                    peer[0] if peer else "-",
                    context.request_id,
                    " client disconnected" if disconnected else "",
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
