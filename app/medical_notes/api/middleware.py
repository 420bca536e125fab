"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a queue per request)."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medical_notes.api.responses import TrackedSend, send_json
from medical_notes.metrics import Metrics

log = logging.getLogger("medical_notes.access")

PUBLIC_PATHS = frozenset({"/health"})


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
        match, _ = candidate.matches(scope)
        if match is not Match.NONE and hasattr(candidate, "path"):
            return candidate.path
    return UNMATCHED_ROUTE


class RequestLogMiddleware:
    """One line per request: method, path, status, duration; never bodies, query strings or headers.
    Also counts the request in the metrics, by route template. A client that disconnected before
    its answer was sent is logged and counted as 499, not as what the app tried to answer."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        tracked_send = TrackedSend(send)
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
            seconds = time.perf_counter() - started
            status = CLIENT_DISCONNECTED if disconnected else tracked_send.status or 500
            self.metrics.observe_request(scope["method"], route_template(scope, self.routes), status, seconds)
            if log.isEnabledFor(logging.INFO):
                path = scope["path"]
                if len(path) > MAX_LOGGED_PATH_CHARS:
                    path = path[:MAX_LOGGED_PATH_CHARS] + "..."
                log.info(
                    "%s %s %d %.1fms%s",
                    scope["method"],
                    path,
                    status,
                    seconds * 1000,
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


class BearerTokenMiddleware:
    """When API_TOKEN is set, every path except /health needs `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        presented = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                presented = value
                break
        scheme, _, credentials = presented.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self.expected):
            await self.app(scope, receive, send)
            return
        detail = "missing bearer token" if not presented else "invalid bearer token"
        challenge = b'Bearer realm="medical-notes"'
        if presented:
            challenge += b', error="invalid_token"'
        await send_json(send, 401, {"detail": detail}, [(b"www-authenticate", challenge)])
