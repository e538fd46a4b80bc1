"""The API's links (a face's crop_url, a photo's image_url, a job's url, ...) as a client
follows them: under the path a reverse proxy serves pgface at (PGFACE_API_ROOT_PATH, which
`pgface serve` gives uvicorn as its root_path, in each request's scope), so that the page and
any client behind `https://example.org/faces/` reach them through the proxy."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.types import Receive, Scope, Send

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
    """Each request's links built under its root path (api_url)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _ROOT_PATH.set(root_path(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            _ROOT_PATH.reset(token)
