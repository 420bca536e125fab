"""The FastAPI application: `create_app()` is the factory uvicorn runs (`medical_notes.api:create_app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from medical_notes import __version__
from medical_notes.api.errors import UnexpectedErrorMiddleware, install_exception_handlers
from medical_notes.api.fastlane import FastLane
from medical_notes.api.handlers import Handlers
from medical_notes.api.middleware import BearerTokenMiddleware, BodySizeLimitMiddleware, RequestLogMiddleware
from medical_notes.api.responses import FastJSONResponse
from medical_notes.api.routes import build_router
from medical_notes.api.services import Services
from medical_notes.config import Settings
from medical_notes.logs import configure_logging

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_credentials()
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
    router = build_router(handlers)
    app.include_router(router)
    # Added innermost first: a request passes the log and metrics, the error guard, the token check,
    # the size limit, then the fast lane or FastAPI's own routing.
    app.add_middleware(FastLane, handlers=handlers)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    if settings.api_token is not None:
        app.add_middleware(BearerTokenMiddleware, token=settings.api_token.get_secret_value())
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(RequestLogMiddleware, metrics=services.metrics, routes=router.routes)
    return app
