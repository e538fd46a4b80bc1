"""/docs (Swagger UI) and /redoc served from the install: their JS and CSS come from the
fastapi-offline wheel, not a CDN, so they work without a network."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pgface.api.urls import root_path

ASSETS = "/docs-assets"


def assets_dir() -> Path:
    """swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png."""
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Add /docs and /redoc to an app made with docs_url=None and redoc_url=None."""
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        at = root_path(request.scope)  # behind a proxy at a path: its links under it
        return get_swagger_ui_html(
            openapi_url=at + openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=at + redirect_url,
            swagger_js_url=f"{at}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{at}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{at}{ASSETS}/favicon.png")

    @app.get(redirect_url, include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        at = root_path(request.scope)
        # with_google_fonts off: the fonts would come from the network too
        return get_redoc_html(openapi_url=at + openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{at}{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{at}{ASSETS}/favicon.png",
                              with_google_fonts=False)
