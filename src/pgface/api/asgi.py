"""The base of the server's own ASGI middleware: it sees HTTP requests; every other scope (the
lifespan's startup and shutdown) goes by untouched."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request, passed on to self.app in the middleware's way."""
        raise NotImplementedError


# On every answer, where the route set none of its own: never shown in another site's frame
# (a page framed by another site has its buttons clicked through, unseen: Undo, erase; probe
# security31), never taken by a browser for another type than it says, no path of the page
# sent on to another site as the referrer, and never taken into another site's page as an
# image (Cross-Origin-Resource-Policy: the browser keeps the answer from that page, whatever
# the server let through; probe hostile56 showed an open server's photos in another site's
# page).
# The page's own scripts alone run: should a name or a path ever reach the page as markup
# (the page builds its elements as text, probe hostile56 found none), no script in it runs,
# and the API key the page keeps is not sent anywhere but here. Styles may be inline (the page
# places a face's box by a style attribute); images may be the blob: URLs the page makes.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
                           "object-src 'none'; base-uri 'self'; form-action 'self'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = ((b"x-frame-options", b"DENY"),
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"))


class SecurityHeaders(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {bytes(name).lower() for name, _ in headers}
                message["headers"] = headers + [(name, value) for name, value
                                                in SECURITY_HEADERS if name not in present]
            await send(message)

        await self.app(scope, receive, send_guarded)
