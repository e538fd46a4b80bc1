"""/docs (Swagger UI) and /redoc served from the install: their JS and CSS come from the
fastapi-offline wheel, not a CDN, so they work without a network."""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pgface.api.asgi import CONTENT_SECURITY_POLICY
from pgface.api.urls import root_path

ASSETS = "/docs-assets"


def assets_dir() -> Path:
    """swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png."""
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


# The script FastAPI writes into each docs page (Swagger UI's and ReDoc's set-up), which the
# server's policy (script-src 'self') would stop: each page's policy names its own scripts by
# their hashes, so they run and nothing else inline does.
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_own_scripts(page: HTMLResponse) -> HTMLResponse:
    """PAGE, its Content-Security-Policy allowing the inline scripts it holds, and workers of
    blob: URLs (ReDoc's search)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode()))
    page.headers["content-security-policy"] = CONTENT_SECURITY_POLICY.replace(
        "script-src 'self'", f"script-src 'self' {hashes}") + "; worker-src 'self' blob:"
    return page


def install_docs(app: FastAPI) -> None:
    """Add /docs and /redoc to an app made with docs_url=None and redoc_url=None."""
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        at = root_path(request.scope)  # behind a proxy at a path: its links under it
        return with_own_scripts(get_swagger_ui_html(
            openapi_url=at + openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=at + redirect_url,
            swagger_js_url=f"{at}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{at}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{at}{ASSETS}/favicon.png"))

    @app.get(redirect_url, include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return with_own_scripts(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        at = root_path(request.scope)
        # with_google_fonts off: the fonts would come from the network too
        return with_own_scripts(get_redoc_html(
            openapi_url=at + openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{at}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{at}{ASSETS}/favicon.png", with_google_fonts=False))
