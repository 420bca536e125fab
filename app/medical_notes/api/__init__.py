"""The FastAPI application: `create_app()` is the factory uvicorn runs (`medical_notes.api:create_app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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
from medical_notes.ui import (
    BootstrapTokenCredentials,
    SecurityHeadersMiddleware,
    SessionStore,
    build_docs_router,
    build_ui_router,
    mount_static,
)

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
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.services = services
    install_exception_handlers(app)
    handlers = Handlers(services)
    router = build_router(handlers)
    app.include_router(router)
    api_token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    if api_token is not None:
        declare_bearer_auth(app)
    if settings.docs_enabled:
        app.include_router(build_docs_router())
    if settings.ui_enabled:
        sessions = SessionStore(BootstrapTokenCredentials(api_token), settings.ui_session_idle_minutes)
        app.include_router(build_ui_router(handlers, sessions, settings))
    mount_static(app, docs=settings.docs_enabled)
    # Added innermost first: a request passes the log and metrics, the security headers, the error
    # guard, the token check, the size limit, then the fast lane or FastAPI's own routing.
    app.add_middleware(FastLane, handlers=handlers)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    if api_token is not None:
        # The console signs in with its own session; the docs pages and the schema hold no patient data.
        public = {"/ui", "/docs", "/redoc", "/openapi.json"} if settings.docs_enabled else {"/ui"}
        app.add_middleware(
            BearerTokenMiddleware, token=api_token, public_paths=public, public_prefixes=("/ui/", "/static/")
        )
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestLogMiddleware, metrics=services.metrics, routes=router.routes)
    return app


def declare_bearer_auth(app: FastAPI) -> None:
    """OpenAPI says which operations need the bearer token, so Swagger UI's Authorize button sends it."""
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_schema()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API token"}
            }
            for path, operations in schema["paths"].items():
                if path != "/health":
                    for operation in operations.values():
                        operation["security"] = [{"bearerAuth": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
