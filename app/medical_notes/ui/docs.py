"""Swagger UI and ReDoc from our own origin.

The JavaScript and CSS come from the fastapi-offline wheel (pinned in requirements.txt), which ships
swagger-ui-dist and redoc's standalone bundle; FastAPI's own pages would load them from a public CDN,
which an air-gapped host cannot reach and which would tell a third party who uses the service.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

DOCS_ASSETS = Path(str(files("fastapi_offline") / "static"))
UI_ASSETS = Path(__file__).parent / "static"
# ReDoc's sidebar footer loads its vendor's logo from a CDN; we point it at our own icon instead.
REDOC_VENDOR_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
LOCAL_LOGO = b"/static/ui/favicon.svg"

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>medical-notes API</title>
  <link rel="stylesheet" href="/static/docs/swagger-ui.css">
  <link rel="icon" href="/static/ui/favicon.svg" type="image/svg+xml">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/static/docs/swagger-ui-bundle.js"></script>
  <script src="/static/ui/docs-init.js"></script>
</body>
</html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>medical-notes API</title>
  <link rel="icon" href="/static/ui/favicon.svg" type="image/svg+xml">
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="/static/docs/redoc.standalone.js"></script>
</body>
</html>
"""


def build_docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    redoc_bundle = (DOCS_ASSETS / "redoc.standalone.js").read_bytes().replace(REDOC_VENDOR_LOGO, LOCAL_LOGO)

    @router.get("/static/docs/redoc.standalone.js")
    async def redoc_script() -> Response:
        return Response(redoc_bundle, media_type="text/javascript")

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(SWAGGER_PAGE)

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return HTMLResponse(REDOC_PAGE)

    return router


def mount_static(app: FastAPI, *, docs: bool) -> None:
    app.mount("/static/ui", StaticFiles(directory=UI_ASSETS), name="ui-static")
    if docs:
        app.mount("/static/docs", StaticFiles(directory=DOCS_ASSETS), name="docs-static")
