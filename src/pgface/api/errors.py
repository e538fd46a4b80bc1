"""Every error leaves as JSON `{"error": {"status": ..., "message": ...}}` with a 4xx/5xx code."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from pgface.db.connection import DatabaseError
from pgface.errors import ImageError, ModelPackError, NoFaceError, NotFoundError, PgfaceError
from pgface.people import PersonError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the API refuses, with the status and the message the client sees."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)


# Most specific first: ImageError, NoFaceError... are all PgfaceErrors.
_STATUS: list[tuple[type[Exception], int]] = [
    (ImageError, 400),
    (NoFaceError, 422),
    (NotFoundError, 404),
    (PersonError, 409),
    (DatabaseError, 503),
    (ModelPackError, 500),
    (PgfaceError, 400),
]


def _where(loc: tuple) -> str:
    kind = {"query": "query parameter", "path": "path parameter", "body": "field",
            "header": "header", "cookie": "cookie"}.get(str(loc[0]), str(loc[0]))
    name = ".".join(str(part) for part in loc[1:])
    return f"{kind} {name!r}" if name else "request body"


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "missing":
            msg = "is required"
        parts.append(f"{_where(tuple(error.get('loc', ('body',))))} {msg}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        response = error_response(exc.status, exc.message)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"  # RFC 9110: a 401 names its scheme
        return response

    @app.exception_handler(PgfaceError)
    async def _domain(_: Request, exc: PgfaceError) -> JSONResponse:
        status = next(code for cls, code in _STATUS if isinstance(exc, cls))
        if status >= 500:
            log.error("request failed: %s", exc)
        return error_response(status, str(exc))

    @app.exception_handler(PoolTimeout)
    async def _busy(_: Request, exc: PoolTimeout) -> JSONResponse:
        return error_response(503, "the database is busy: no connection became free in time")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message)
