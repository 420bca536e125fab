"""The clinician console (/ui/) and the offline API documentation pages (/docs, /redoc)."""

from medical_notes.ui.docs import build_docs_router, mount_static
from medical_notes.ui.headers import SecurityHeadersMiddleware
from medical_notes.ui.routes import build_ui_router
from medical_notes.ui.sessions import SessionStore, TokenCredentials

__all__ = [
    "SecurityHeadersMiddleware",
    "SessionStore",
    "TokenCredentials",
    "build_docs_router",
    "build_ui_router",
    "mount_static",
]
