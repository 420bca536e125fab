"""What the middleware and the handlers share about the request being served: its id, the client that
made it and the audit event it produces. Set by RequestContextMiddleware for each request."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

# What an incoming X-Request-ID must look like to be kept (anything else is replaced): short, and
# free of characters that could forge log fields or headers.
VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")


@dataclass(slots=True)
class AuditEvent:
    action: str
    document_id: int | None
    recorded: bool = False  # a write's handler stored it in its own transaction


@dataclass(slots=True)
class RequestContext:
    request_id: str
    client: str
    audit: AuditEvent | None = None


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


def request_id_from(header: bytes | None) -> str:
    if header is not None and VALID_REQUEST_ID.fullmatch(header):
        return header.decode()
    return uuid.uuid4().hex


def audit_event(action: str, document_id: int | None = None) -> AuditEvent | None:
    """Mark the current request as touching a note; None outside a request (nothing to audit)."""
    context = current_request.get()
    if context is None:
        return None
    context.audit = AuditEvent(action, document_id)
    return context.audit
