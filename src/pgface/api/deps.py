"""Request dependencies: the library object, API-key checks, and the CPU-bound thread pool."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import anyio.from_thread
import anyio.to_thread
from fastapi import Depends, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.responses import Response

from pgface.api.errors import ApiError, media_type
from pgface.config import Settings
from pgface.db import api_keys, server
from pgface.library import Pgface
from pgface.paths import loggable

T = TypeVar("T")
# Declared so that OpenAPI (and /docs' Authorize button) shows the schemes, each operation
# listing them as alternatives (a key in either header); checked below (presented_key). The
# X-API-Key header was read and documented, not declared: a generated client had no way to
# send it (probe clients39).
bearer = HTTPBearer(auto_error=False, description="An API key: pgf_...")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="An API key: pgf_..., instead of Authorization: Bearer")
CREATE_HINT = "create one with `pgface keys create NAME --scope read`"


def get_pf(request: Request) -> Pgface:
    pf: Pgface = request.app.state.pf
    # Stopped on purpose, the embedded server stays stopped: say so now rather than after the
    # pool's 30 s wait. A crashed one is restarted by the next connection and the watchdog.
    if (gone := pf.data_folder_gone()) is not None:  # its `db start` made a new library there
        raise ApiError(503, gone, "database_unavailable")
    if pf.embedded and server.stopped(get_settings(request).resolved_data_dir()):
        raise ApiError(503, "the embedded PostgreSQL is stopped (`pgface db stop`); start it "
                            "with `pgface db start`", "database_unavailable")
    return pf


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def run_cpu(request: Request, func: Callable[..., T], *args: Any) -> T:
    """Decoding and inference, in worker threads bounded by api_inference_workers.

    The event loop stays free, and database-only requests, which run in the default thread
    pool, never queue behind a running inference.
    """
    return await anyio.to_thread.run_sync(partial(func, *args), limiter=request.app.state.cpu)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Where a client may send its key, as each is said to it
KEY_HEADERS = {"authorization": "Authorization", "x-api-key": "X-API-Key"}


def key_headers(headers: Headers) -> list[tuple[str, str]]:
    """(name, value) of each header a key may come in, every value of each as sent: the one
    place the keys a request presented are read, by the check (presented_key) and by the log's
    line (errors._sender). Each took a value of its own of two headers of one name, the check
    the first and the log the last, so the line of a refused key named the other one (probe
    clients39)."""
    return [(name, value) for name in KEY_HEADERS for value in headers.getlist(name)]


def presented_key(headers: Headers) -> str | None:
    """The key sent as `Authorization: Bearer` or `X-API-Key`. Both, different, is a 401: a
    wrong key is always refused, and neither may be ignored in favour of the other; so is
    either header sent several times, whatever their values (the first was read and the
    others ignored: a valid key then a wrong one was let in, probe clients39)."""
    sent = key_headers(headers)
    for name, said in KEY_HEADERS.items():
        count = sum(sent_name == name for sent_name, _ in sent)
        if count > 1:
            raise ApiError(401, f"{count} {said} headers were sent: send one API key, in one "
                                f"header")
    values = dict(sent)
    auth = values.get("authorization", "")
    bearer_key = (auth[7:].strip() or None) if auth.lower().startswith("bearer ") else None
    header_key = values.get("x-api-key") or None
    if bearer_key and header_key and bearer_key != header_key:
        raise ApiError(401, "two different API keys were sent (Authorization: Bearer and "
                            "X-API-Key): send one")
    return bearer_key or header_key


def _wrong_scheme(request: Request) -> str:
    """What was wrong with an Authorization header that held no Bearer key, as the start of
    the 401's advice: `Authorization: Basic pgf_...` was told to send a key as if none had
    been sent (probe ops21)."""
    scheme = request.headers.get("authorization", "").strip().split(" ", 1)[0]
    if not scheme or scheme.lower() == "bearer":
        return ""
    shown = scheme if len(scheme) <= 20 and scheme.isprintable() else "another"
    return f"the Authorization header's scheme is {shown!r}, not Bearer: "


def _key_in_url(request: Request) -> str:
    """What to say of a key sent in the URL (`?api_key=pgf_...`, as other APIs take it): not
    read, and the 401 told the client to send one, so it sent it again there (probe
    operator35)."""
    if any(api_keys.SECRET_IN_TEXT.search(value) for value in request.query_params.values()):
        return "an API key in the URL is not read (logs and histories keep URLs): "
    return ""


def keys_required(settings: Settings, any_key: bool) -> str | None:
    """Why this server wants a key from every client, or None while it may stay open."""
    if settings.api_auth == "always":
        return "this server requires an API key (api_auth=always)"
    if not is_loopback(settings.api_host):
        reason = f"this server listens on {settings.api_host}, so it requires an API key"
        return reason if any_key else f"{reason}, and none exists yet: {CREATE_HINT}"
    if any_key:
        return "API keys exist on this server, so every request needs one"
    return None


def authenticate(request: Request) -> tuple[api_keys.ApiKey | None, str | None]:
    """(the key presented, why a key is needed); raises 401 on a wrong key."""
    key = presented_key(request.headers)
    with get_pf(request).pool.connection() as conn:
        if key is not None:
            found = api_keys.verify_key(conn, key)
            if found is None:
                raise ApiError(401, "the API key is not valid (mistyped, or revoked)")
            return found, None
        return None, keys_required(get_settings(request), api_keys.active_key_exists(conn))


# What a browser says of a request's page against the server's (Fetch Metadata): a page of
# another site, or of another port of this machine (another origin of one site)
OTHER_SITES = frozenset({"cross-site", "same-site"})


def refuse_other_sites(request: Request, scope: str) -> None:
    """On a server open to every client that reaches it (no API keys: it listens on loopback),
    what a web page of another site can make a browser here send is refused (probe
    security31): a request addressed to a name that is not this machine's (DNS rebinding: a
    site's name pointed at 127.0.0.1 made its page the server's own origin, free to read the
    library and change it), and any request sent by a page of another origin: a change
    (cross-site request forgery: a form posted from any site erased a person), and a read too,
    whose answer the browser keeps from that page, but which that page still had the server
    do and show (probe hostile56: any site's page made the server search a photo costly to
    decode, again and again, and showed the library's photos in its own page, their sizes and
    which ids exist read from its images' load events). A client that is no browser sends
    neither Origin nor Sec-Fetch-Site, and names the server as it reaches it. Over plain HTTP
    a browser sends no Sec-Fetch-Site from a page of a name other than localhost, so the page
    itself, opened through a proxy under another name, cannot change the library here: a
    server other machines reach needs keys anyway, and the refusal says so."""
    refuse_other_hosts(request)
    host = request.headers.get("host") or ""
    site, origin = request.headers.get("sec-fetch-site"), request.headers.get("origin")
    if site in OTHER_SITES or (site is None and origin is not None and (
            _url_part(origin, "netloc") != host.lower())):
        what = "a change" if scope == "write" else "a request"
        raise ApiError(403, f"{what} sent by a web page of another origin "
                            f"({loggable(origin or 'unnamed')}) is refused: this server has no "
                            f"API keys, so a page of any site a browser here opens could make "
                            f"it (the page pgface serves sends its own; opened through a proxy "
                            f"under another name, the server needs an API key, pgface keys "
                            f"create, as any server other machines reach)", "cross_site_request")


def _url_part(url: str, part: str) -> str:
    """A URL's netloc or hostname, lower case; "" for one no URL has (`http://[::1`: urlsplit's
    ValueError was every request's 500, its traceback in the log, probe reprobe33)."""
    try:
        return (getattr(urlsplit(url), part) or "").lower()
    except ValueError:
        return ""


def made_to_this_machine(request: Request) -> bool:
    """Whether a request names this machine (a loopback name or address, a name under
    .localhost, the address it reached): no site's name pointed at 127.0.0.1; and no proxy
    passed it on from another machine's client (proxied: health told a proxy's clients the
    database's socket path, probe reprobe36)."""
    if proxied(request) is not None:
        return False
    host = request.headers.get("host")
    if host is None:
        return True
    name = _url_part(f"//{host}", "hostname")
    if not name:  # an empty Host, or one no URL has
        return False
    reached = str((request.scope.get("server") or ("",))[0]).lower()
    return is_loopback(name) or name.endswith(".localhost") or name == reached


def sees_database_words(request: Request) -> bool:
    """Whether the database's own words (its host or socket path, which a failure to connect
    quotes) go to this client: a server's on loopback, in a request made to this machine (no
    site's name pointed at 127.0.0.1, no proxy's client); elsewhere they are the server's
    log's alone (probes security31, reprobe32, reprobe36, operator35: a read key's holder on
    the network was told the socket path)."""
    settings = get_settings(request)
    return (is_loopback(settings.api_host) and settings.api_auth != "always"
            and made_to_this_machine(request))


# What a reverse proxy adds to the requests it passes on: a client of another machine
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def proxied(request: Request) -> str | None:
    """Why a request is taken for one a proxy passed on (its forwarding header, said), or
    None."""
    name = next((name for name in FORWARDING_HEADERS if name in request.headers), None)
    return None if name is None else f"{name.title()}: {loggable(request.headers[name])}"


def proxied_refusal(said: str) -> str:
    """What an open server says of a request a proxy passed on (SAID: proxied's words)."""
    return (f"this server has no API keys, so it answers this machine's clients only, and "
            f"this request came through a proxy ({said}) that any client it serves could "
            f"send: create an API key (pgface keys create) to serve through a proxy")


def refuse_other_hosts(request: Request) -> None:
    """A request made to a name that is not this machine's refused (refuse_other_sites), and
    one a proxy passed on from another client: an open server behind nginx answered the
    whole network, the proxy's requests coming from 127.0.0.1 (probe operator35; nginx names
    the server by its address, as proxy_pass does, unless told otherwise)."""
    host = request.headers.get("host")
    said = proxied(request)
    if said is not None:
        raise ApiError(403, proxied_refusal(said), "proxied_request")
    if not made_to_this_machine(request):
        raise ApiError(403, f"this server has no API keys, so it answers requests made to "
                            f"this machine only (localhost, 127.0.0.1), not to "
                            f"{loggable(host)!r}: a web page of any site could reach it "
                            f"under that name; create an API key (pgface keys create) to "
                            f"serve it under another", "host_not_allowed")


def require(scope: str) -> Callable[[Request], api_keys.ApiKey | None]:
    """A dependency that lets the request through with a key of `scope`, or when open (and
    then not from a web page of another site: refuse_other_sites)."""

    def check(request: Request,
              _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
              __: Annotated[str | None, Depends(api_key_header)] = None,
              ) -> api_keys.ApiKey | None:
        key, why = authenticate(request)
        if key is None and why is not None:
            raise ApiError(401, f"{why}: {_wrong_scheme(request)}{_key_in_url(request)}send "
                                f"it as 'Authorization: Bearer pgf_...'")
        if key is None:
            refuse_other_sites(request, scope)
        if key is not None:
            request.state.api_key_name = key.name  # for the log's line of a 4xx
        if key is not None and not key.allows(scope):
            raise ApiError(403, f"API key {key.name!r} lacks the {scope!r} scope "
                                f"(it has: {', '.join(key.scopes)})")
        if scope == "write":
            request.state.writes = True  # the log's line of the change (ClientErrorsLogged)
        refuse_unknown_parameters(request)
        return key

    check.__name__ = f"require_{scope}"
    return check


def _declared(dependant: Any) -> tuple[set[str], set[str]]:
    """The query parameters and body fields a route and its dependencies read."""
    query = {p.alias for p in dependant.query_params}
    body = {p.alias for p in dependant.body_params}
    for sub in dependant.dependencies:
        sub_query, sub_body = _declared(sub)
        query |= sub_query
        body |= sub_body
    return query, body


def _takes_files(dependant: Any) -> bool:
    """Whether a route or one of its dependencies reads a file part."""
    return (any(isinstance(p.field_info, params.File) for p in dependant.body_params)
            or any(map(_takes_files, dependant.dependencies)))


def _blank_part(value: Any) -> bool:
    """Whether a form's part asks for nothing: a field left blank, a file input left empty (an
    HTML form sends both), as a query parameter sent empty does."""
    if isinstance(value, str):
        return value == ""
    return not getattr(value, "filename", None) and getattr(value, "size", None) == 0


def _several_parts(field: str, parts: list) -> ApiError:
    """The 400 of a form that holds several PARTS named FIELD, where one photo goes: only the
    last was read (three photos sent to be indexed answered 201, two dropped unsaid), and an
    empty file input last was bound, the photo sent said unread (probe reprobe36)."""
    names = ", ".join(repr(getattr(p, "filename", None) or field) for p in parts)
    return ApiError(400, f"{len(parts)} parts named {field!r} were sent ({names}): one photo "
                         f"each, so send each photo in a request of its own", "too_many_files")


def _given_twice(name: str, values: list[str]) -> dict[str, Any]:
    """The 422 error of query parameter NAME given more than once, VALUES as given."""
    shown = ", ".join("a key" if api_keys.SECRET_IN_TEXT.search(value) else repr(value)
                      for value in values[:3])
    return {"type": "repeated_parameter", "loc": ("query", name), "msg": (
        f"is given {len(values)} times ({shown}{', ...' if len(values) > 3 else ''}): "
        "it takes one value, send it once")}


def refuse_unknown_parameters(request: Request) -> None:
    """A query parameter, or a part of a multipart form, that the route does not read is a 422
    naming it: `?treshold=0.7`, or `-F threshold=0.7` (a form field where the threshold is a
    query parameter), was dropped, and the request answered 200 at the default threshold, a
    looser check than was asked (probe compare35), where a misspelt JSON field is refused;
    and so is one the route reads given twice. Called once the key is checked (require): a
    request without one is told that first."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    query, body = _declared(dependant)
    body_field = getattr(route, "body_field", None)
    form = body_field is not None and isinstance(body_field.field_info, params.Form)
    errors: list[dict[str, Any]] = []
    # No query parameter of pgface's is a list: one given twice (?top=1&top=50) was answered
    # with the last, the other dropped without a word; a blank one counts (last, it made
    # ?threshold=0.7&threshold= the default's looser check: probe reprobe36), unless all are.
    for name in sorted(query):
        values = request.query_params.getlist(name)
        if len(values) > 1 and any(values):
            errors.append(_given_twice(name, values))
    for name, value in request.query_params.multi_items():
        # sent empty, as an HTML form sends a field left blank, it asks for nothing: as a
        # parameter the route reads is then its default (search's top= to identify)
        if name in query or value == "" or any(name == e["loc"][1] for e in errors):
            continue
        errors.append({"type": "unknown_parameter", "loc": ("query", name), "msg": (
            "holds an API key, which is not read from the URL (logs and histories keep URLs): "
            "send it as 'Authorization: Bearer pgf_...'" if api_keys.SECRET_IN_TEXT.search(value)
            else "is not a parameter of this request: a part of its form, send it in the "
            "multipart body" if form and name in body else
            "is not a parameter of this request (a misspelling?)")})
    # A photo sent as a urlencoded body (curl --data-binary's default type) was parsed into
    # "fields" named by its bytes, refused in a 60 KB message of them (probe api39): a form
    # of files is read from multipart alone, and FastAPI's "send it as multipart/form-data"
    # is the answer.
    if form and (media_type(request.headers.get("content-type", "")) == "multipart/form-data"
                 or not _takes_files(dependant)):
        parts = anyio.from_thread.run(request.form)  # as FastAPI read it: kept by Starlette
        for name in dict.fromkeys(parts.keys()):
            # a photo part given twice: before the field's binding, which takes the last
            if name in body and len(parts.getlist(name)) > 1:
                raise _several_parts(name, parts.getlist(name))
            if name not in body and not all(map(_blank_part, parts.getlist(name))):
                errors.append({"type": "unknown_parameter", "loc": ("body", name), "msg": (
                    f"is no part of this request's form: a query parameter here, send it in "
                    f"the URL (?{name}=...)" if name in query else
                    "is no part of this request's form (a misspelling?)")})
    if errors:
        raise RequestValidationError(errors)


require_read = require("read")
require_write = require("write")


def _each_key_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object of PAIRS, refused where it names a key twice: json.loads kept the last
    (`{"name": "Alpha", "name": "Beta"}` named the faces Beta, the other dropped without a
    word, probe reprobe37), where a query parameter given twice is refused."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            times = sum(1 for k, _ in pairs if k == key)
            raise ValueError(f"key {key!r} is given {times} times in one object: give it once")
        seen.add(key)
    return dict(pairs)


class _OneValueAKeyRequest(Request):
    """A request whose JSON body is read with each key of an object given once."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), object_pairs_hook=_each_key_once)
        return self._json


class JsonRoute(APIRoute):
    """The API's routes: a JSON body that names a key twice is refused (the route's JSON
    parser raising, which errors._unread_json answers as a 422 naming the key)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_once(request: Request) -> Response:
            return await handler(_OneValueAKeyRequest(request.scope, request.receive))

        return read_once
