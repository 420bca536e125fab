"""The FastAPI application: `create_app()` is the factory uvicorn runs (`medical_notes.api:create_app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from medical_notes import __version__
from medical_notes.api.auth import AuthMiddleware
from medical_notes.api.errors import UnexpectedErrorMiddleware, install_exception_handlers
from medical_notes.api.fastlane import FastLane
from medical_notes.api.handlers import Handlers
from medical_notes.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from medical_notes.api.responses import FastJSONResponse
from medical_notes.api.routes import build_router
from medical_notes.api.services import Services
from medical_notes.clients import ANONYMOUS_CLIENT
from medical_notes.config import Settings
from medical_notes.logs import configure_logging
from medical_notes.ui import (
    SecurityHeadersMiddleware,
    SessionStore,
    TokenCredentials,
    build_docs_router,
    build_ui_router,
    mount_static,
)

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_credentials()
    settings.check_auth()
    configure_logging(settings.log_level)
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="medical-notes",
        version=__version__,
        description="SOAP notes in PostgreSQL, note summaries and guideline answers with citations.",
        lifespan=lifespan,
        default_response_class=FastJSONResponse,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.services = services
    install_exception_handlers(app)
    handlers = Handlers(services)
    router = build_router(handlers)
    app.include_router(router)
    if settings.docs_enabled:
        app.include_router(build_docs_router())
    if settings.ui_enabled:
        credentials = TokenCredentials(services.clients, settings.api_token)
        sessions = SessionStore(services.database, credentials, settings.ui_session_idle_minutes)
        app.include_router(build_ui_router(handlers, sessions, settings))
    mount_static(app, docs=settings.docs_enabled)
    # Added innermost first: a request passes the request context (id, log, metrics, audit), the
    # security headers, the error guard, authentication and scopes, the size limit, then the fast
    # lane or FastAPI's own routing.
    app.add_middleware(FastLane, handlers=handlers)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    if services.clients is not None:
        app.add_middleware(AuthMiddleware, registry=services.clients, bootstrap_token=settings.api_token)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        RequestContextMiddleware,
        audit=services.audit,
        # Set by AuthMiddleware (or the console's session) once the client is known; without
        # authentication requests are anonymous.
        default_client=ANONYMOUS_CLIENT if services.clients is None else "-",
        metrics=services.metrics,
        routes=router.routes,
    )
    return app
