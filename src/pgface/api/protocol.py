"""`pgface serve`'s HTTP/1.1: uvicorn's h11 protocol, with a request line and headers over
MAX_HEADER_BYTES answered as the API answers every error, a JSON 431, where h11's limit (16 KiB,
written nowhere) was uvicorn's plain-text `400 Invalid HTTP request received.` (probe ops21),
a body its route answers without reading not read on: the connection is closed, and a request
line and headers not all in within PGFACE_API_HEAD_TIMEOUT_S answered 408 and closed."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from pgface.config import Settings

# The request line (the query string in it) and every header together: what h11 holds before
# the request is read whole. Bodies are not counted: they stream (PGFACE_API_MAX_UPLOAD_BYTES).
MAX_HEADER_BYTES = 64 * 1024

log = logging.getLogger(__name__)


# uvicorn's own answer past its limit_concurrency, as it writes it
_PAST_THE_LIMIT = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; "
                   b"charset=utf-8\r\nconnection: close\r\ncontent-length: 19\r\n\r\n"
                   b"Service Unavailable")


class _Connection(h11.Connection):
    """h11's connection, keeping the status its last refusal of the client's bytes hints.
    h11 refuses a request line and headers over its limit only while they are incomplete: one
    that came in a single read of the socket (up to 256 KiB) went through. Counted here once
    read whole too, as the bytes it took from the socket (the whitespace h11 strips from the
    values with them: 70,000 spaces before a header's value went through, probe reprobe22), so
    that the limit is the same however the bytes arrived."""

    refused_status: int | None = None

    def __init__(self, limit: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=limit)
        self._limit = limit
        self._received = 0  # bytes given to h11
        self._head_from = 0  # of those, where this request's head starts

    def receive_data(self, data: bytes) -> None:
        self._received += len(data)
        super().receive_data(data)

    def received_of_this_head(self) -> int:
        """Bytes received since the last request ended: this request's head, so far."""
        return self._received - self._head_from

    def next_event(self) -> Any:
        try:
            event = super().next_event()
            # what h11 took of the bytes given (its buffer, h11's own attribute, holds the
            # rest; an h11 without it keeps its own limit alone rather than fail every request)
            buffered = getattr(self, "_receive_buffer", None)
            if buffered is None:
                return event
            taken = self._received - len(buffered)
            if isinstance(event, h11.Request) and taken - self._head_from > self._limit:
                raise h11.RemoteProtocolError("request line and headers too long",
                                              error_status_hint=431)
            if isinstance(event, h11.EndOfMessage):  # the next request's head starts here
                self._head_from = taken
            return event
        except h11.RemoteProtocolError as exc:
            self.refused_status = exc.error_status_hint
            raise

    def send(self, event: Any) -> bytes | None:
        """A response begun while the request's body is still coming says `Connection: close`,
        and the connection is closed once it is sent (h11 says MUST_CLOSE, uvicorn closes).
        Kept alive, the body left unread (a 404, `GET /api/health` with a body, an early 413)
        was read and dropped for as long as the client sent it: uvicorn's keep-alive timer
        starts over at each byte, and the route never reads, so PGFACE_API_BODY_TIMEOUT_S never
        ran (probe reprobe23: one byte a second held a connection past 40 s, 500 such clients
        every connection)."""
        if isinstance(event, h11.Response) and self.their_state is h11.SEND_BODY:
            said = b",".join(value for name, value in event.headers if name == b"connection")
            if b"close" not in [token.strip().lower() for token in said.split(b",")]:
                event = h11.Response(status_code=event.status_code, reason=event.reason,
                                     http_version=event.http_version,
                                     headers=[*event.headers, (b"connection", b"close")])
        return super().send(event)


class NowAndThen:
    """Something that may happen many times a second, said at most once in EVERY_S seconds
    (a log line each was hundreds of megabytes a minute): happened() counts it and, when it
    is time to say it again, answers how many times it happened since it was last said and
    over how long; None till then."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.count = 0
        self.said_at = -every_s

    def happened(self) -> tuple[int, float] | None:
        self.count += 1
        now = time.monotonic()
        if now - self.said_at < self.every_s:
            return None
        said = (self.count, min(now - self.said_at, self.every_s))
        self.count, self.said_at = 0, now
        return said


# Heads timed out: a line a minute for a crowd of clients that stall, not one each
_HEADS_TIMED_OUT = NowAndThen(60.0)


def limit_concurrency_for(connections: int) -> int:
    """uvicorn's limit_concurrency that serves CONNECTIONS at once: one more, since uvicorn
    refuses a request where its connections, the request's own counted, reach the limit (at
    PGFACE_API_MAX_CONNECTIONS=3 a request on the third connection open was a 503, and under
    `ulimit -n 64`, a limit of 1, every request was, probe reprobe27)."""
    return connections + 1


class PgfaceH11Protocol(H11Protocol):
    # A request's line and headers not all in this long after its first byte (the first
    # request's: after the connection opened) are answered 408 and the connection closed; a
    # connection that sent nothing at all is closed. uvicorn timed neither: one byte a second
    # of a head, or a connection opened and left, held a connection for good, and
    # PGFACE_API_MAX_CONNECTIONS of them every one (the keep-alive timer stops at a byte).
    head_timeout_s: float = Settings.model_fields["api_head_timeout_s"].default

    @classmethod
    def timing_heads(cls, seconds: float) -> type[PgfaceH11Protocol]:
        """This protocol with heads timed after SECONDS (PGFACE_API_HEAD_TIMEOUT_S)."""
        return type(cls.__name__, (cls,), {"head_timeout_s": seconds})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _Connection(self.config.h11_max_incomplete_event_size or MAX_HEADER_BYTES)
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            # a kept-alive connection's next request: timed from its first byte (uvicorn's
            # keep-alive timer, which times the wait for it, stops there)
            self._time_the_head()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in: its route times the rest
            self._stop_timing_the_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timing_the_head()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        """A request sent on behind the one answered (pipelined), its head only in part: timed
        as a head from now, not by uvicorn's keep-alive timer, which closed the connection
        after 5 s without a word (probe reprobe28)."""
        super().on_response_complete()
        if (not self.transport.is_closing() and self.conn.their_state is h11.IDLE
                and self.conn.received_of_this_head()):
            self._unset_keepalive_if_required()
            if self._head_timer is None:
                self._time_the_head()

    def _time_the_head(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _stop_timing_the_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.received_of_this_head():
            said = _HEADS_TIMED_OUT.happened()
            if said is not None:
                log.warning("a request's line and headers were not all in within %g s: "
                            "answered 408 and closed (%d such since the last of these lines)",
                            self.head_timeout_s, said[0])
            message = (f"the request line and headers were not all sent within "
                       f"{self.head_timeout_s:g} s: send the request again")
            body = json.dumps({"error": {"status": 408, "code": "head_timeout",
                                         "message": message}}).encode()
            # written as is, as uvicorn writes its 503: h11 answers only a request it has read
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        self.transport.close()

    def connection_made(self, transport: Any) -> None:
        """A connection past the limit (PGFACE_API_MAX_CONNECTIONS, within `ulimit -n`) is
        answered 503 and closed at once, as uvicorn answers a request past it. uvicorn counts
        connections only when a request comes: idle ones took a file each until none was
        left, and then asyncio's accept() retries starved the connections already open, which
        went unanswered (probe reprobe26)."""
        super().connection_made(transport)
        # uvicorn answers a request 503 where its connections, this one counted, are as many
        # as limit_concurrency: `pgface serve` gives it one more than the connections it
        # serves (limit_concurrency_for), and a connection past those is closed here
        limit = self.config.limit_concurrency
        if limit is not None and len(self.connections) >= limit:
            self.transport.write(_PAST_THE_LIMIT)
            self.transport.close()
            return
        self._time_the_head()

    def send_400_response(self, msg: str) -> None:
        """h11 refused the request; where for its size (431), say so as the API's JSON. A
        refusal while the request's route runs (a chunked body's trailer over the limit) is
        the answer, and the route's own goes nowhere: it was sent after it, and h11's refusal
        of that logged as the route's 500 with two tracebacks (probe reprobe23)."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the route's answer is dropped, as for a client gone
            if cycle.response_started:  # half an answer out: nothing more can be said
                self.transport.close()
                return
        if getattr(self.conn, "refused_status", None) != 431:
            super().send_400_response(msg)
            return
        limit = self.config.h11_max_incomplete_event_size or MAX_HEADER_BYTES
        log.warning("a request's line and headers went over %s bytes: answered 431", f"{limit:,}")
        message = (f"the request line and headers are over the limit of {limit:,} bytes: send "
                   f"a shorter query string or fewer, shorter headers")
        body = json.dumps({"error": {"status": 431, "code": "headers_too_large",
                                     "message": message}}).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        for event in (h11.Response(status_code=431, headers=headers,
                                   reason=b"Request Header Fields Too Large"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()
