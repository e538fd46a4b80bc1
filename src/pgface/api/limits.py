"""Upload limits: the request body is cut off early, and every photo is checked on its own."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pgface.api.asgi import HttpMiddleware
from pgface.api.errors import ApiError, error_response

MULTIPART_SLACK = 64 * 1024  # form boundaries and small fields around the photo bytes


def over_photo_limit(what: str, size: int | None, photo_bytes: int) -> str:
    """WHAT (an upload, a file part) over a photo's limit, said with its size where it is
    known ("has more" where its length was not sent), every door alike (probe reprobe41)."""
    return (f"{what} {f'is {size:,} bytes' if size is not None else 'has more'}: a photo may "
            f"have at most {photo_bytes:,} bytes")


class _TooLarge(HTTPException):
    """An HTTPException so that FastAPI's body parsing re-raises it rather than saying 400."""

    def __init__(self, max_bytes: int, photo_bytes: int | None = None,
                 sent: int | None = None) -> None:
        # The photo's own limit is the one to say, with the upload's size where its length
        # was sent: the body's limit (two photos for a compare, and the form around them) read
        # as a second limit, and the page said "huge.jpg: request body is over the limit of
        # 10,551,296 bytes: a photo may have at most 5,242,880 bytes" (probe web40).
        if photo_bytes:
            message = over_photo_limit("the upload", sent, photo_bytes)
        else:
            message = f"request body is over the limit of {max_bytes:,} bytes"
        super().__init__(413, message)


class _Stalled(HTTPException):
    def __init__(self, idle_s: float) -> None:
        super().__init__(408, f"the request body sent nothing for {idle_s:g} s: send it again")


class _TooSlow(HTTPException):
    def __init__(self, total_s: float, seen: int) -> None:
        super().__init__(408, f"the request body was not all sent within {total_s:g} s "
                              f"({seen:,} bytes came): send it again, faster")


def declare_body_limits(app: FastAPI) -> None:
    """BodyLimit answers 413 (over the limit), 408 (stalled) and 415 (compressed) to any
    request body before a route sees it: each is declared on every operation that takes a
    body (the people writes declared neither 413 nor 408, and none 415, so generated clients
    knew of none)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()  # cached on app.openapi_schema: amended in place, once
            error = {"application/json": {"schema": {
                "$ref": "#/components/schemas/ErrorResponse"}}}
            for operations in schema["paths"].values():
                for operation in operations.values():
                    if "requestBody" not in operation:
                        continue
                    responses = operation["responses"]
                    responses.setdefault("408", {"description": "The body stalled "
                                                 "(PGFACE_API_BODY_IDLE_S) or took too long "
                                                 "(PGFACE_API_BODY_TIMEOUT_S)",
                                                 "content": error})
                    responses.setdefault("413", {"description": "The body or an upload is "
                                                 "over the limit", "content": error})
                    responses.setdefault("415", {"description": "The body was sent with a "
                                                 "Content-Encoding (not read: send it "
                                                 "uncompressed)", "content": error})
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class BodyLimit(HttpMiddleware):
    """Refuses a request body over `max_bytes` before it is read into memory or spooled, one
    that sends nothing for `idle_s`, and one not all in `total_s` after the request's headers
    (the connection is closed: its body was not read to the end). The idle limit alone let a
    body trickled at a byte each 0.2 s hold its connection for good: 500 such clients took
    every connection (probe ops21)."""

    def __init__(self, app: ASGIApp, max_bytes: int, photo_bytes: int | None = None,
                 idle_s: float = 60.0, total_s: float = 300.0) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.photo_bytes = photo_bytes
        self.idle_s = idle_s
        self.total_s = total_s

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        # a photo's limit said only to a body that may be photos (a form's, or bytes of no
        # text type): a JSON body (of names, ids) read "a photo may have", and so did one sent
        # as text or as curl's --data-binary form (probe reprobe41)
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        photos = (kind.startswith((b"multipart/", b"image/"))
                  or kind in (b"", b"application/octet-stream"))
        photo_bytes = self.photo_bytes if photos else None
        seen = 0
        deadline = asyncio.get_running_loop().time() + self.total_s
        started = False
        body_done = False
        cut_short = False  # the body was refused before its end: the connection is closed

        # Chunked bodies carry no length: count as they arrive. Only the body is timed: once
        # it is all in, receive() waits for the client to disconnect, as long as a response
        # streams.
        async def counting_receive() -> Message:
            nonlocal seen, body_done, cut_short
            if body_done:
                return await receive()
            left = deadline - asyncio.get_running_loop().time()
            try:
                if left <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(receive(), min(self.idle_s, left))
            except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
                cut_short = True
                if left <= self.idle_s:  # the whole body's time ran out first
                    raise _TooSlow(self.total_s, seen) from None
                raise _Stalled(self.idle_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    cut_short = True
                    raise _TooLarge(self.max_bytes, photo_bytes)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if cut_short:  # whoever answers (the app's handler of its exception, or us)
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"connection", b"close")]}
            await send(message)

        encoding = headers.get(b"content-encoding", b"").decode("latin-1").strip()
        # a body's only: a GET without one, sent with the header, was refused (probe
        # jsoncontract35), and no operation without a body declares the 415
        has_body = (length is not None and length.strip() not in (b"", b"0")) \
            or b"transfer-encoding" in headers
        if encoding and encoding.lower() != "identity" and has_body:
            # not decoded: a gzip body was "the body's JSON cannot be read ('utf-8' codec
            # can't decode byte 0x8b)", a plain one labelled gzip was acted on (hostile62)
            cut_short = True  # refused unread
            await error_response(415, f"a body sent with Content-Encoding: {encoding[:40]!r} "
                                      f"is not read: send it uncompressed (no "
                                      f"Content-Encoding)")(scope, receive, tracking_send)
            return
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            cut_short = True  # refused unread: said Connection: close (it read on, probe reprobe23)
            await error_response(413, _TooLarge(self.max_bytes, photo_bytes,
                                                int(length)).detail)(
                scope, receive, tracking_send)
            return
        try:
            await self.app(scope, counting_receive, tracking_send)
        except (_TooLarge, _Stalled, _TooSlow) as exc:
            if not started:
                await error_response(exc.status_code, exc.detail)(scope, receive,
                                                                  tracking_send)


async def read_upload(upload: UploadFile, max_bytes: int, field: str) -> tuple[bytes, str]:
    """The bytes and name of one uploaded photo, refused with 413 over the limit (a form with
    several parts of that name was refused before: deps.refuse_unknown_parameters)."""
    name = upload.filename or field
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        # its size, as a body over the body's limit is told (_TooLarge)
        raise ApiError(413, over_photo_limit(f"{field} {name!r}", upload.size, max_bytes))
    if not data:
        raise ApiError(400, f"{field} {name!r} is empty")
    return data, name
