"""Every failure becomes JSON with a status that says whose fault it is; never a stack trace in a body."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from medical_notes.api.responses import FastJSONResponse, TrackedSend
from medical_notes.db import DatabaseTimeout, DatabaseUnavailable
from medical_notes.providers import ProviderError
from medical_notes.rag import IndexUnavailable

log = logging.getLogger("medical_notes.api")

# Sent with 503 (database unreachable or no free connection) and 504 (statement or lock timeout).
DATABASE_RETRY_AFTER_SECONDS = "2"


def _field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    # The rejected input is left out: it may be a whole note, and clients have it already.
    fields = []
    for item in error.errors():
        entry = {"type": item["type"], "loc": list(item["loc"]), "msg": item["msg"]}
        if item["type"] == "json_invalid" and "ctx" in item:
            entry["msg"] = f"JSON decode error: {item['ctx'].get('error')}"
        fields.append(entry)
    return fields


def error_response(error: Exception) -> Response | None:
    """The JSON answer for the failures we expect; None for anything else (a bug: 500)."""
    if isinstance(error, RequestValidationError):
        return FastJSONResponse({"detail": _field_errors(error)}, status_code=422)
    if isinstance(error, HTTPException):
        return FastJSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=error.headers
        )
    if isinstance(error, DatabaseUnavailable):
        log.warning("%s", error.reason)
        return FastJSONResponse(
            {"detail": error.reason}, status_code=503, headers={"Retry-After": DATABASE_RETRY_AFTER_SECONDS}
        )
    if isinstance(error, DatabaseTimeout):
        log.warning("%s", error.reason)
        return FastJSONResponse(
            {"detail": error.reason}, status_code=504, headers={"Retry-After": DATABASE_RETRY_AFTER_SECONDS}
        )
    if isinstance(error, ProviderError):
        log.warning("provider error %d: %s", error.status_code, error.message)
        return FastJSONResponse({"detail": error.message}, status_code=error.status_code)
    if isinstance(error, IndexUnavailable):
        return FastJSONResponse({"detail": f"guideline index unavailable: {error.reason}"}, status_code=503)
    return None


async def _handle(request: Request, error: Exception) -> Response:
    response = error_response(error)
    if response is None:
        raise error
    return response


def install_exception_handlers(app: FastAPI) -> None:
    for error_type in (
        RequestValidationError,
        HTTPException,
        DatabaseUnavailable,
        DatabaseTimeout,
        ProviderError,
        IndexUnavailable,
    ):
        app.add_exception_handler(error_type, _handle)


class UnexpectedErrorMiddleware:
    """Last resort: a 500 JSON body without details, and a log record with the traceback but not the
    exception message (messages can quote the data that caused them). A client that went away while
    its body was being read is no error of ours: nothing is sent and the request log says so."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked_send = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked_send)
        except ClientDisconnect:
            return
        except Exception as error:
            frames = "".join(traceback.format_tb(error.__traceback__))
            log.error(
                "unexpected %s on %s %s\n%s", type(error).__name__, scope["method"], scope["path"], frames
            )
            if tracked_send.started:
                raise
            response = FastJSONResponse({"detail": "internal server error"}, status_code=500)
            await response(scope, receive, send)
