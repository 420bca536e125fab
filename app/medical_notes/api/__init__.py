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
    )
    app.state.services = services
    install_exception_handlers(app)
    handlers = Handlers(services)
    app.include_router(build_router(handlers))
    # Added innermost first: a request passes the request context (id, log, audit), the error guard,
    # authentication and scopes, the size limit, then the fast lane or FastAPI's own routing.
    app.add_middleware(FastLane, handlers=handlers)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    if services.clients is not None:
        app.add_middleware(AuthMiddleware, registry=services.clients, bootstrap_token=settings.api_token)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(
        RequestContextMiddleware,
        audit=services.audit,
        # Set by AuthMiddleware once the token is known; without authentication requests are anonymous.
        default_client=ANONYMOUS_CLIENT if services.clients is None else "-",
    )
    return app
