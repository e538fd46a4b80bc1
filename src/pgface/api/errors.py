"""Every error leaves as JSON `{"error": {"status", "code", "message"}}`.

A 4xx is the client's to fix and its `code` says what kind it is; a 500 (`internal`) is a bug,
logged here with its traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys

import psycopg
from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Mount
from starlette.types import Message, Receive, Scope, Send

from pgface.api.asgi import HttpMiddleware
from pgface.api.urls import root_path
from pgface.db.connection import (
    DatabaseError,
    StatementFailed,
    connection_lost,
    database_error,
)
from pgface.errors import (
    ImageError,
    InvalidInputError,
    ModelPackError,
    NoFaceError,
    NotFoundError,
    OpenFilesError,
    OutOfMemoryError,
    PeopleBusyError,
    PgfaceError,
)
from pgface.library import FROM_PYTHON
from pgface.paths import loggable
from pgface.people import PersonError

log = logging.getLogger(__name__)

# The code of an error that has no more specific one: one per status.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_encoding",
    422: "invalid_request",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """A request the API refuses, with the status, code and message the client sees."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or STATUS_CODES.get(status, f"http_{status}")


def error_response(status: int, message: str, code: str | None = None,
                   details: dict | None = None) -> JSONResponse:
    """The API's error envelope; DETAILS (a PersonConflict's: what a client asks its user)
    beside the message."""
    code = code or STATUS_CODES.get(status, f"http_{status}")
    return JSONResponse({"error": {"status": status, "code": code, "message": message,
                                   **(details or {})}}, status_code=status)


# Most specific first: ImageError, NoFaceError... are all PgfaceErrors.
_DOMAIN: list[tuple[type[Exception], int, str]] = [
    (ImageError, 400, "invalid_image"),
    (InvalidInputError, 400, "invalid_input"),
    (NoFaceError, 422, "no_face"),
    (NotFoundError, 404, "not_found"),
    (PeopleBusyError, 409, "people_busy"),
    (PersonError, 409, "conflict"),
    (DatabaseError, 503, "database_unavailable"),
    (ModelPackError, 503, "model_unavailable"),
    (OutOfMemoryError, 503, "out_of_memory"),
    (OpenFilesError, 503, "too_many_open_files"),
    (PgfaceError, 400, "bad_request"),
]


# A step of pydantic's `loc` that names a branch of a union (`int`, `str`,
# `list[union[int,str]]`, `function-after[...]`), not a field: "field 'source.int'" named no
# field there is (probe hostile62).
_UNION_BRANCH = re.compile(r"(int|str|float|bool|none|[a-z_-]+\[.*\])")


def _field_loc(loc: tuple) -> tuple:
    return tuple(part for part in loc if not (isinstance(part, str)
                                              and _UNION_BRANCH.fullmatch(part)))


def media_type(content_type: str) -> str:
    """A Content-Type header's media type, without its parameters, in lower case."""
    return content_type.split(";")[0].strip().lower()


MAX_NAME_SHOWN = 60  # characters of a parameter's name an error quotes


def _where(loc: tuple) -> str:
    kind = {"query": "query parameter", "path": "path parameter", "body": "field",
            "header": "header", "cookie": "cookie"}.get(str(loc[0]), str(loc[0]))
    name = ".".join(str(part) for part in loc[1:])
    if not name and len(loc) > 1:  # `?=5`: it was "request body"
        return f"a {kind} with no name"
    if len(name) > MAX_NAME_SHOWN:  # a name made of a body's bytes was said whole (60 KB)
        return f"{kind} {name[:MAX_NAME_SHOWN]!r}... ({len(name)} characters)"
    return f"{kind} {name!r}" if name else "request body"


def validation_message(exc: RequestValidationError, content_type: str = "",
                       form: bool = False) -> str:
    """The request's mistakes in words; a body field's with what the body was (a photo sent
    as the raw body, or as a text part, was "field 'file' is required" or pydantic's
    "Expected UploadFile, received: <class 'str'>"). A JSON body that does not parse says so
    and where (it was "field '29' JSON decode error": the offset taken for a field's name),
    and JSON sent as text/plain or a form names the Content-Type to send (it was "request
    body Input should be a valid dictionary")."""
    parts: list[str | tuple] = []  # a tuple: a union field's place, said once at the end
    branches: dict[tuple, list[str]] = {}  # a union field's: each form it failed as
    media = media_type(content_type)
    for error in exc.errors():
        loc = tuple(error.get("loc", ("body",)))
        if (field := _field_loc(loc)) != loc:
            if field not in branches:
                parts.append(field)
            branches.setdefault(field, []).append(str(error.get("msg", "invalid")))
            continue
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":  # FastAPI's loc is ("body", the offset)
            reason = (error.get("ctx") or {}).get("error", "")
            at = f"at character {loc[1]}" if len(loc) > 1 else ""
            said = ": ".join(part for part in (at, str(reason)) if part)
            parts.append(f"the body is not valid JSON{f' ({said})' if said else ''}")
            continue
        if loc == ("body",) and isinstance(error.get("input"), bytes) and not form:
            # a body FastAPI did not read as JSON, by its Content-Type: its bytes
            parts.append(f"the body is read as JSON only when sent as JSON: send Content-Type: "
                         f"application/json (this request's Content-Type is {media!r})")
            continue
        if error.get("type") == "missing":
            msg = "is required"
            # form: the endpoint takes a multipart form (a JSON body's missing field is no
            # multipart part: FastAPI reads a body without a Content-Type as JSON there)
            if form and loc[0] == "body" and len(loc) == 2:
                msg += (f": no part named {loc[1]!r} was read from the multipart body (a part "
                        f"named otherwise, or a body cut short before its closing boundary)"
                        if media == "multipart/form-data" else
                        f": send it as multipart/form-data, in a part named {loc[1]!r} (this "
                        f"request's Content-Type is {media or 'not given'!r})")
        elif error.get("type") == "extra_forbidden":
            msg = "is not a field of this request (a misspelling?)"
        elif "Expected UploadFile" in msg:
            msg = ("must be a file: a part with a filename (this one was read as a text field; "
                   "a part naming its file only as filename*= is read so)")
        parts.append(f"{_where(loc)} {msg}")
    said = [part if isinstance(part, str) else
            f"{_where(part)} is none of the forms it takes: {' | '.join(branches[part])}"
            for part in parts]
    return "; ".join(said) or "invalid request"


class ClientErrorsLogged(HttpMiddleware):
    """Each 4xx answered is one line of the server's log: the error's code and message, and the
    key that sent the request (its name; the id of one not taken). The access log
    said "401 Unauthorized" alone: an operator could not tell a revoked key from a missing
    one, nor whose it was, nor why a search was refused. So is each change made (a request a
    write scope let through, answered below 400), with its key: a photo deleted, an upload, a
    job started said nothing of who asked (probe operator35)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, body = 0, bytearray()

        async def logging_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if status < 400 and scope.get("state", {}).get("writes"):
                    log.info("%s %s: %d%s", scope.get("method"),
                             loggable(scope.get("path", "")), status, _sender(scope))
            elif 400 <= status < 500 and message["type"] == "http.response.body":
                if len(body) < LOGGED_BODY_BYTES:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    log.info("%s %s: %d%s%s", scope.get("pgface.asked", scope.get("method")),
                             loggable(scope.get("path", "")), status,
                             _error_said(bytes(body)), _sender(scope))
            await send(message)

        await self.app(scope, receive, logging_send)


LOGGED_BODY_BYTES = 64 * 1024  # an error's envelope is far smaller


def _error_said(body: bytes) -> str:
    """`code: message` of the API's error envelope, on one line (else nothing): its control
    characters escaped (a file name or a path the message quotes may hold any)."""
    try:
        error = json.loads(body)["error"]
        return f" {error['code']}: {loggable(' '.join(str(error['message']).split()))}"
    except (ValueError, KeyError, TypeError):
        return ""


def _sender(scope: Scope) -> str:
    """Whose request it was: ` (key NAME)`, ` (key id ID)` where the key presented was not
    taken (not valid, or two sent: ` (key ids ID, ID)`), or nothing."""
    name = scope.get("state", {}).get("api_key_name")
    if name is not None:
        return f" (key {name!r})"
    from pgface.api.deps import key_headers  # (deps raises this module's)

    ids = [found[1] for _, value in key_headers(Headers(raw=scope.get("headers", [])))
           for found in KEY_ID.finditer(value)]
    ids = list(dict.fromkeys(ids))  # a key sent in both headers, once
    if len(ids) > 1:
        return f" (key ids {', '.join(ids)})"
    return f" (key id {ids[0]})" if ids else ""


# A key's public id (`pgface keys list` shows it); never the secret after it.
KEY_ID = re.compile(r"pgf_([0-9a-f]{12})_")


SHUT_DOWN = ("the server is shutting down and stopped this request before its answer (what "
             "it had started may have been done): send it again once the server is back")


class InternalErrors(HttpMiddleware):
    """Any exception no handler took is a bug: logged with its traceback, answered as JSON 500."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still running once a shutdown's grace is up
            # (cli.serve.GRACEFUL_SHUTDOWN_S): one whose body was still coming in was its
            # plain-text 500 and a traceback in the log (probe ops21). Answered, and let end.
            task = asyncio.current_task()
            if started or task is None or not task.cancelling():
                raise
            task.uncancel()
            log.warning("%s %s: cut short by the server's shutdown: answered 503",
                        scope.get("method"), loggable(scope.get("path", "")))
            response = error_response(503, SHUT_DOWN, "shutting_down")
            response.headers["connection"] = "close"  # its body was not read to the end
            await response(scope, receive, send)
        except Exception as exc:
            log.exception("500 on %s %s%s", scope.get("method"),
                          loggable(scope.get("path", "")), _sender(scope))
            if started:
                raise  # too late for an answer of our own: the server closes the connection
            message = f"internal error ({type(exc).__name__}); the server's log has the details"
            await error_response(500, message, "internal")(scope, receive, send)


# FastAPI's answer to a body its JSON parser raised on with anything but a JSONDecodeError
PARSE_ERROR = "There was an error parsing the body"


def _root_path_kept(scope: Scope, asked: str) -> str | None:
    """Why a request for a path under the root path, made past the proxy that takes it off
    (or through a proxy that does not), found nothing, naming the path as it came: it was
    named with the root path twice, the cause unsaid (probes reprobe30, docs31)."""
    root, path = root_path(scope), str(scope.get("path", ""))
    received = path.removeprefix(root)
    if not root or received == path or not (received + "/").startswith(root + "/"):
        return None
    return (f"no such endpoint: {asked} {loggable(received)} (pgface is served at {root}, "
            f"PGFACE_API_ROOT_PATH: the proxy in front of it takes {root} off a request "
            f"before passing it on, and this one came with it)")


def _unread_json(request: Request, exc: StarletteHTTPException) -> str | None:
    """Why a JSON body that is valid JSON could not be read, or None for another error. It
    was a 400 "There was an error parsing the body", where docs/http.md promises a 422
    naming what was wrong (probe http19: arrays 1000 deep, an integer of 5000 digits)."""
    body = getattr(request.scope.get("route"), "body_field", None)
    if (exc.status_code != 400 or exc.detail != PARSE_ERROR or body is None
            or isinstance(body.field_info, params.Form)):
        return None
    cause = exc.__cause__
    if isinstance(cause, RecursionError):
        return (f"the body's JSON is nested too deep to read (arrays or objects within each "
                f"other past about {sys.getrecursionlimit():,} levels)")
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        # novm below: Python 3.10 has it from 3.10.7, and only its limit raises this
        digits = sys.get_int_max_str_digits()  # novm
        return f"the body's JSON holds a number of more than {digits:,} digits"
    reason = " ".join(str(cause).split()) if cause is not None else ""
    return f"the body's JSON cannot be read{f' ({reason})' if reason else ''}"


# The methods a route of the API may be declared for (HEAD is answered as GET: head.HeadAsGet)
ROUTE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str | None:
    """Every method the request's path is answered for, as a 405's Allow says them; None for a
    path under a mount (its files say their own). Starlette's Allow names the methods of the
    path's first route alone, one route a method here, so `PUT /api/photos/1` was told GET
    and not DELETE."""
    methods = [method for method in ROUTE_METHODS
               if any(not isinstance(route, Mount)
                      and route.matches({**request.scope, "method": method})[0] is Match.FULL
                      for route in request.app.router.routes)]
    if "GET" in methods:
        methods.insert(1, "HEAD")
    return ", ".join(methods) or None


# psycopg's errors of what the server's database may not do (_servers_database answers them)
_SERVERS_DATABASE = (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        response = error_response(exc.status, exc.message, exc.code)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"  # RFC 9110: a 401 names its scheme
        return response

    @app.exception_handler(PgfaceError)
    async def _domain(request: Request, exc: PgfaceError) -> JSONResponse:
        status, code = next((s, c) for cls, s, c in _DOMAIN if isinstance(exc, cls))
        # no advice to a Python caller: a request cut off by `pgface db stop` was told to
        # "close() this Pgface" (probe serve37), as the CLI and a job leave it out
        said = str(exc).replace(FROM_PYTHON, "")
        if status >= 500:  # the request and its key, as every 5xx line (reprobe36)
            log.error("%s %s: %s%s", request.method, loggable(request.url.path),
                      loggable(said), _sender(request.scope))
        if isinstance(exc, DatabaseError):
            from pgface.api.deps import sees_database_words  # (deps raises this module's)

            if not sees_database_words(request):  # health's rule: the log has the words
                return error_response(status, "database unavailable: the server's log says "
                                              "why", code)
        # a conflict's details wherever it is raised (a name several people have in other
        # letter case, `alike`, reached by any endpoint that takes a name)
        return error_response(status, said, code, getattr(exc, "details", None))

    @app.exception_handler(psycopg.OperationalError)
    async def _lost(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        reason = " ".join(str(exc).split())
        if connection_lost(exc):
            # The server went away mid-request; the pool and the watchdog bring it back.
            log.warning("%s %s: database connection lost: %s%s", request.method,
                        loggable(request.url.path), reason, _sender(request.scope))
            return error_response(503, "the database connection was lost; try again",
                                  "database_unavailable")
        if (exc.sqlstate or "").startswith("54"):  # a value past a limit: the client's to fix
            log.warning("%s %s: refused by the database: %s%s", request.method,
                        loggable(request.url.path), reason, _sender(request.scope))
            return error_response(400, f"a value was refused by the database: {reason}",
                                  "invalid_input")
        if isinstance(exc, psycopg.errors.DiskFull):
            # said as the CLI, a job and a restore say it (docs/cli.md): "could not extend
            # file ... HINT: Check free disk space" named no folder an operator knows
            return await _servers_database(request, exc)
        # Out of memory or connections (SQLSTATE 53), or the server's own trouble.
        log.error("%s %s: the database could not do it: %s%s", request.method,
                  loggable(request.url.path), reason, _sender(request.scope))
        return error_response(503, f"the database could not do it: {reason}",
                              "database_unavailable")

    # What the server's database may not do, its connection read-only, its role without a
    # right (a search-only one asked to write: a 500 with a traceback before, probe operator)
    # or its disk full: not the client's mistake, nor a bug; a 503 in the words of the CLI and
    # the Python API (database_error).
    async def _servers_database(request: Request, exc: psycopg.Error) -> JSONResponse:
        said = str(database_error(exc))
        log.error("%s %s: %s%s", request.method, loggable(request.url.path), said,
                  _sender(request.scope))
        return error_response(503, said, "database_unavailable")

    for refusal in _SERVERS_DATABASE:
        app.add_exception_handler(refusal, _servers_database)

    @app.exception_handler(psycopg.DataError)
    async def _data(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # Values PostgreSQL refuses (a NUL in a text, a number out of range) came from the client.
        reason = " ".join(str(exc).split())
        log.warning("%s %s: refused by the database: %s%s", request.method,
                    loggable(request.url.path), reason, _sender(request.scope))
        return error_response(400, f"a value was refused by the database: {reason}",
                              "invalid_input")

    @app.exception_handler(StatementFailed)
    async def _statement(request: Request, exc: StatementFailed) -> JSONResponse:
        # The Python API's words for psycopg's error (pgface.Pgface, People), answered as
        # psycopg's own is above: a lost connection or a read-only one 503, a value refused
        # 400, and another, a bug, 500 with its traceback logged (InternalErrors).
        cause = exc.__cause__
        if isinstance(cause, psycopg.OperationalError):
            return await _lost(request, cause)
        if isinstance(cause, _SERVERS_DATABASE):
            return await _servers_database(request, cause)
        if isinstance(cause, psycopg.DataError):
            return await _data(request, cause)
        if isinstance(cause, psycopg.Error):
            raise cause
        return await _domain(request, exc)  # without its cause (unpickled): its own words

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = getattr(request.scope.get("route"), "body_field", None)
        form = body is not None and isinstance(body.field_info, params.Form)
        return error_response(422, validation_message(exc, request.headers.get(
            "content-type", ""), form), "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        # the exception's own headers kept: a 405's Allow (RFC 9110: it MUST be sent) was
        # dropped with them (probe clients39)
        headers = dict(exc.headers or {})
        if exc.status_code == 400 and isinstance(exc.__cause__, ClientDisconnect):
            # a client gone mid-body (a tab closed, a network drop), a form's or JSON's,
            # logged as a body that could not be parsed, the answer no one reads (probes
            # soak42, reprobe43)
            announced = request.headers.get("content-length", "")
            return error_response(400, (
                "the client closed the connection before its whole body came" + (
                    f" ({int(announced):,} bytes announced)" if announced.isdigit() else "")
                + ": nothing of it was stored"), "client_gone")
        unread = _unread_json(request, exc)
        if unread:
            return error_response(422, unread, "invalid_request")
        # the path as sent, control characters escaped (request.url drops a newline: a path
        # holding "%0D%0A" was named without it, another path than the one asked for)
        path = loggable(request.scope.get("path", ""))
        if exc.status_code == 404 and message == "Not Found":
            # the method asked for: a HEAD is answered as its GET (head.HeadAsGet)
            asked = request.scope.get("pgface.asked", request.method)
            message = _root_path_kept(request.scope, asked) or f"no such endpoint: {asked} {path}"
        elif exc.status_code == 405:
            allowed = _allowed_methods(request) or headers.get("Allow")
            if allowed:
                headers["Allow"] = allowed
            message = f"{request.method} is not allowed on {path}" + (
                f": it answers {allowed}" if allowed else "")
        elif exc.status_code == 400 and message == "Invalid multipart data.":
            # Starlette's words for any part python-multipart refuses, which named no reason
            # (probe hostile24): its limits are a part's headers (4,224 bytes, at most 8)
            message = ("the multipart body cannot be read: a part is malformed, or its "
                       "headers are over 4,224 bytes or more than 8 (a file name over about "
                       "4,000 bytes, say)")
        response = error_response(exc.status_code, message)
        response.headers.update(headers)
        return response
