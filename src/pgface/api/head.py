"""HEAD answered as GET without the body, for every GET route (FastAPI routes answer only the
methods they name: `HEAD /` and `HEAD /api/health` were 405, so a probe that uses HEAD, as
load balancers and uptime checks may, saw the server as broken)."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from pgface.api.asgi import HttpMiddleware


class HeadAsGet(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":  # headers (Content-Length too) stay
                message = {**message, "body": b""}
            await send(message)

        # the method asked for kept for the log (errors.ClientErrorsLogged)
        await self.app({**scope, "method": "GET", "pgface.asked": "HEAD"}, receive,
                       without_body)
