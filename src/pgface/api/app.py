"""The HTTP app: wires routers, the web page and error handlers; opens the library once."""

from __future__ import annotations

import importlib.resources
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pgface import __version__
from pgface.api import admin, faces, jobs, people, photos, search
from pgface.api.asgi import SecurityHeaders
from pgface.api.contract import declare_contract, operation_id
from pgface.api.docs import install_docs
from pgface.api.errors import ClientErrorsLogged, InternalErrors, install_error_handlers
from pgface.api.head import HeadAsGet
from pgface.api.limits import MULTIPART_SLACK, BodyLimit, declare_body_limits
from pgface.api.urls import RootPathKnown, root_path
from pgface.config import Settings
from pgface.db.watch import ServerWatch
from pgface.errors import PgfaceError
from pgface.library import Pgface
from pgface.models.analysis import FaceAnalyzer
from pgface.models.sessions import default_threads

DESCRIPTION = """Index photos, search them by face, compare faces. Errors are JSON
`{"error": {"status": 4xx, "code": "not_found", "message": "..."}}` (codes: docs/http.md).
Lists take `limit` and `offset` and answer `total` and `next_offset`. Indexing a server
path is a background job: `POST /api/photos/index-path`, then `GET /api/jobs/{id}`.
Send an API key as `Authorization: Bearer pgf_...` (or `X-API-Key: pgf_...`) when the server
wants one (see `GET /api/auth` and docs/http.md)."""


def static_dir() -> Path:
    return Path(str(importlib.resources.files("pgface.web") / "static"))


log = logging.getLogger(__name__)


def _open(pf: Pgface) -> None:
    # Pool, migrations and model sessions once per process, before the first request.
    _ = pf.pool
    pf.analyzer.warm_up()


def _hnsw_in_step(pf: Pgface) -> None:
    """The HNSW index of a small library built where it is missing: a bulk indexing run
    killed (SIGKILL, a power cut) before it built it again left every search of a server that
    only searches to scan exactly until some later indexing run, unsaid. In a thread of its
    own: building takes seconds, and searches are answered meanwhile, exactly."""
    try:
        pf.keep_hnsw_in_step()
    except Exception as exc:  # noqa: BLE001 (the server serves on: the next run builds it)
        log.warning("the HNSW index was not checked at start: %s", exc)


def create_app(settings: Settings | None = None, analyzer: FaceAnalyzer | None = None
               ) -> FastAPI:
    """The app for these settings; `analyzer` lets tests share loaded models."""
    settings = settings or Settings()
    if settings.api_auth not in ("auto", "always"):
        raise PgfaceError(f"api_auth must be 'auto' or 'always', not {settings.api_auth!r}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pf = Pgface(settings, analyzer=analyzer)
        await anyio.to_thread.run_sync(_open, pf)
        await anyio.to_thread.run_sync(photos.rehome_uploads, pf, settings)
        threading.Thread(target=_hnsw_in_step, args=(pf,), name="pgface-hnsw",
                         daemon=True).start()
        app.state.pf = pf
        workers = settings.api_inference_workers
        app.state.cpu = anyio.CapacityLimiter(workers if workers > 0 else default_threads())
        app.state.jobs = jobs.Jobs(pf)  # one indexing job at a time, the others queued
        # A crashed embedded server is restarted within seconds, even while no request comes;
        # then idle connections to the dead one are dropped from the pool.
        watch = (ServerWatch(settings.resolved_data_dir(), on_restart=pf.pool.check).start()
                 if pf.embedded else None)
        try:
            yield
        finally:
            if watch is not None:
                watch.stop()
            await anyio.to_thread.run_sync(app.state.jobs.close)
            pf.close()

    app = FastAPI(title="pgface", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None,
                  generate_unique_id_function=operation_id)
    app.state.settings = settings
    install_error_handlers(app)
    # Compare takes two photos; anything beyond that and the form fields is refused unread.
    app.add_middleware(BodyLimit, max_bytes=2 * settings.api_max_upload_bytes + MULTIPART_SLACK,
                       photo_bytes=settings.api_max_upload_bytes,
                       idle_s=settings.api_body_idle_s, total_s=settings.api_body_timeout_s)
    # inside HeadAsGet, which drops the body it reads an error's code and message from
    app.add_middleware(ClientErrorsLogged)
    app.add_middleware(HeadAsGet)
    app.add_middleware(people.ChangeHeader)
    app.add_middleware(RootPathKnown)
    app.add_middleware(InternalErrors)  # it sees what every layer inside it raised
    app.add_middleware(SecurityHeaders)  # on every answer, an internal error's too
    for router in (admin.router, photos.router, faces.router, search.router, people.router,
                   people.identify_router, jobs.router):
        app.include_router(router, prefix="/api")
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    declare_body_limits(app)
    declare_contract(app)
    install_docs(app)

    @app.get("/", include_in_schema=False)
    def page(request: Request) -> HTMLResponse:
        # its links (static files, the API) from the path it is served at: behind a proxy at
        # /faces/, "/static/app.js" reached the proxy's root, and the page never started
        html = (static_dir() / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace('<base href="/">',
                                         f'<base href="{escape(root_path(request.scope))}/">', 1))

    return app
