"""The API's links (a face's crop_url, a photo's image_url, a job's url, ...) as a client
follows them: under the path a reverse proxy serves pgface at (PGFACE_API_ROOT_PATH, which
`pgface serve` gives uvicorn as its root_path, in each request's scope), so that the page and
any client behind `https://example.org/faces/` reach them through the proxy."""

from __future__ import annotations

from contextvars import ContextVar
from urllib.parse import urlsplit, urlunsplit

from starlette.types import Message, Receive, Scope, Send

from pgface.api.asgi import HttpMiddleware

# The request's root path ("" at the server's root; no trailing slash), for the links built
# while it is answered (in its task, and in the threads its work runs in: anyio copies the
# context to them).
_ROOT_PATH: ContextVar[str] = ContextVar("pgface_root_path", default="")


def api_url(path: str) -> str:
    """PATH (from the server's root: "/api/faces/7/crop") as the client reaches it."""
    return _ROOT_PATH.get() + path


def root_path(scope: Scope) -> str:
    """The path the server is served at, as the request came ("" at the root)."""
    return str(scope.get("root_path", "")).rstrip("/")


class RootPathKnown(HttpMiddleware):
    """Each request's links built under its root path (api_url), and a redirect to this
    server (the router's, from a path with a trailing slash to the one without) given as a
    path: as a URL it named the host and port the proxy asked at, which nginx's default
    `proxy_redirect` turns into its own with the root path again (/faces/faces/api/people),
    and other proxies pass on, sending a browser to the server itself (probe reprobe30)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _ROOT_PATH.set(root_path(scope))
        host = next((value.decode("latin-1") for name, value in scope.get("headers", ())
                     if name == b"host"), None)

        async def send_path_redirects(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message["headers"] = [
                    (name, _as_path(value, host) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", ())]
            await send(message)

        try:
            await self.app(scope, receive, send_path_redirects)
        finally:
            _ROOT_PATH.reset(token)


def _as_path(location: bytes, host: str | None) -> bytes:
    """A redirect's LOCATION without its scheme and host where they are the request's own
    (kept where its path starts with //, which a browser would take for a host)."""
    url = urlsplit(location.decode("latin-1"))
    if (host is None or url.scheme not in ("http", "https") or url.netloc != host
            or url.path.startswith("//")):
        return location
    return urlunsplit(("", "", url.path or "/", url.query, url.fragment)).encode("latin-1")
