"""Connection-level limits of `koner serve`: open connections, header size, and the time a client has to send a
request.

uvicorn's httptools protocol puts no bound on a request's head and no clock on a client that is slow to send it,
and it accepts connections until the process runs out of file descriptors. `protocol_class` adds three guards:

- at most `max_connections` connections are served at once; one more is answered `503` (`Retry-After: 1`) and
  closed, so idle connections cannot starve the process of file descriptors;
- a request line and headers over `max_header_bytes` are answered `431` and the connection closed, so an unfinished
  header cannot grow without bound;
- each request, head and body, must arrive within `read_timeout` seconds of its first byte (a new connection's
  first request: of the connection opening), else `408` (a connection that sent nothing is just closed).

These answers, and `400` for what is not HTTP/1.1 at all, are written here, in the routes' JSON error format, with
`Connection: close`; the connection then
stays open a moment (`LINGER`) with its write side shut, so the client reads the answer before the close. When the
read timeout ends a request whose body the application is still reading, the application sees the client gone with
`READ_TIMED_OUT` set in its scope, and logs it as 408.
"""
from __future__ import annotations

import asyncio
import http
from dataclasses import dataclass
from typing import Any, Callable, Optional

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .. import jsonl
from .requests import READ_TIMED_OUT
LINGER = 1.0  # seconds a connection answered here stays open, write side shut, before it is closed
MAX_LINGERING = 64  # beyond this many lingering connections, one answered here is closed at once


@dataclass(frozen=True)
class Limits:
    """The connection limits `koner serve` was started with (its defaults: settings.Settings)."""

    max_connections: int
    max_header_bytes: int
    read_timeout: float


class Counts:
    """Connections the server holds: served ones plus those lingering after an answer written here."""

    def __init__(self) -> None:
        self.open = 0
        self.lingering = 0


def error_bytes(status: int, code: str, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A whole HTTP/1.1 answer with the routes' JSON error body, closing the connection."""
    body = jsonl.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode("utf-8")
    head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode("ascii")]
    for name, value in (*headers, (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode("ascii")), (b"connection", b"close")):
        head += [name, b": ", value, b"\r\n"]
    return b"".join([*head, b"\r\n", body])


def protocol_class(limits: Limits, counts: Counts, on_close: Callable[[str, Optional[int]], None]) -> type:
    """uvicorn's httptools protocol with `limits`; `on_close(reason, status)` is told of each connection it ends
    (reason: one of metrics.CONNECTION_CLOSES; status: its answer, None when it sent none or the application
    answers and logs it)."""

    class LimitedHttpToolsProtocol(_Limited):
        pass

    LimitedHttpToolsProtocol.limits = limits
    LimitedHttpToolsProtocol.counts = counts
    LimitedHttpToolsProtocol.on_close = staticmethod(on_close)
    return LimitedHttpToolsProtocol


class _Limited(HttpToolsProtocol):
    """HttpToolsProtocol with a connection cap, a bounded head and a read clock per request."""

    limits: Limits
    counts: Counts
    on_close: Callable[[str, Optional[int]], None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock: Optional[asyncio.TimerHandle] = None
        self._ended = False  # answered (or closed) here: whatever else arrives is discarded
        self._lingering = False
        self._counted = False
        self._began = False  # a request's first byte has arrived and its message is not complete
        self._head_open = True  # that request's head is not complete
        self._began_here = False  # it began in the data being fed now
        self._head_seen = 0  # bytes of its request target and complete headers, as the parser reported them
        self._head_bytes = 0  # bytes of its head so far (those reported, then whole later data chunks)
        # after its head: bytes that were not body (chunk framing, extensions, trailers), and chunks seen
        self._framing = 0
        self._chunks = 0
        self._body_now = 0  # body bytes the parser reported from the data being fed now

    # ---------------------------------------------------------------- the connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.counts.open += 1
        self._counted = True
        if len(self.connections) > self.limits.max_connections:
            self.connections.discard(self)
            self._end(503, "too_many_connections",
                      f"the server holds its limit of {self.limits.max_connections} connections "
                      "(--max-connections); retry shortly", "max_connections", ((b"retry-after", b"1"),))
            return
        self._start_clock()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._stop_clock()
        if self._counted:
            self.counts.open -= 1
            self._counted = False
        if self._lingering:
            self.counts.lingering -= 1
            self._lingering = False
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._ended:
            return  # answered here: the rest is read and dropped until the close
        self._began_here = False
        after_head = self._began and not self._head_open  # a body (chunked: its framing and trailers) is due
        self._body_now = 0
        super().data_received(data)
        if self._ended or self.transport.is_closing():
            return
        if after_head and self._began:  # the same message still: what was not body is framing or trailers
            self._framing += len(data) - self._body_now
            if self._framing > self.limits.max_header_bytes + 64 * self._chunks:
                self._end(431, "header_too_large", "chunk extensions or trailers are over "
                                                   f"{self.limits.max_header_bytes:,} bytes (--max-header-bytes)",
                          "header_too_large")
            return
        if not (self._began and self._head_open):
            return
        # a head still open after this data: count it, and refuse it once it is over the limit (at most one
        # chunk of data beyond it is ever held)
        self._head_bytes = self._head_seen if self._began_here else self._head_bytes + len(data)
        if self._head_bytes > self.limits.max_header_bytes:
            self._head_too_large()

    # ---------------------------------------------------------------- the parser's callbacks

    def on_message_begin(self) -> None:
        if self._ended:
            return
        super().on_message_begin()
        self._began = self._began_here = self._head_open = True
        self._head_seen = self._head_bytes = self._framing = self._chunks = 0
        self._start_clock()

    def on_url(self, url: bytes) -> None:
        if not self._ended:
            self._head_seen += len(url)
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._ended:
            self._head_seen += len(name) + len(value) + 4
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._ended:
            return
        self._head_open = False
        if self._head_seen > self.limits.max_header_bytes:
            self._head_too_large()
            return
        super().on_headers_complete()
        if self.pipeline:  # queued behind the request in progress, reading paused: its clock starts with its turn
            self._stop_clock()

    def on_body(self, body: bytes) -> None:
        if not self._ended:
            self._body_now += len(body)
            super().on_body(body)

    def on_chunk_header(self) -> None:
        self._chunks += 1  # each chunk may carry a few bytes of framing (its size line and CRLF)

    def on_message_complete(self) -> None:
        if self._ended:
            return
        self._began = False
        self._stop_clock()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._began and not self._ended and not self.transport.is_closing():
            self._start_clock()  # the next request's body (or this one's, answered early) is still due

    # ---------------------------------------------------------------- the guards

    def _start_clock(self) -> None:
        self._stop_clock()
        self._clock = self.loop.call_later(self.limits.read_timeout, self._read_timed_out)

    def _stop_clock(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None

    def send_400_response(self, msg: str) -> None:
        """What the parser cannot read gets the routes' JSON error, not uvicorn's plain text."""
        self._end(400, "invalid_http", "the request is not valid HTTP/1.1", "invalid_http")

    def _head_too_large(self) -> None:
        self._end(431, "header_too_large", f"the request line and headers are over "
                                           f"{self.limits.max_header_bytes:,} bytes (--max-header-bytes)",
                  "header_too_large")

    def _read_timed_out(self) -> None:
        self._clock = None
        if self._ended or self.transport.is_closing():
            return
        message = f"the request did not arrive within {self.limits.read_timeout:g} s (--read-timeout)"
        if not self._began:  # nothing sent since the connection opened (or the last answer): just close
            self._end(None, "", "", "read_timeout")
        elif self._head_open:
            self._end(408, "read_timeout", message, "read_timeout")
        elif self.cycle is not None and not self.cycle.response_started:
            # the application is reading the body: it sees the client gone, marked as a read timeout
            self.scope[READ_TIMED_OUT] = True  # type: ignore[literal-required]
            self._end(408, "read_timeout", message, "read_timeout", app_logs=True)
        else:  # answered already (early, before its body was read): close
            self._end(None, "", "", "read_timeout", app_logs=True)

    def _end(self, status: Optional[int], code: str, message: str, reason: str,
             headers: tuple[tuple[bytes, bytes], ...] = (), app_logs: bool = False) -> None:
        """Answer `status` (None: nothing) and close the connection once the client has had a moment to read it."""
        self._ended = True
        self._stop_clock()
        self.connections.discard(self)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's receive() says the client is gone; its sends are dropped
            cycle.message_event.set()
        self.on_close(reason, None if app_logs else status)
        transport = self.transport
        if transport.is_closing():
            return
        if status is not None:
            transport.write(error_bytes(status, code, message, tuple(self.server_state.default_headers) + headers))
        if self.counts.lingering < MAX_LINGERING and transport.can_write_eof():
            transport.write_eof()  # the answer, then end of stream; what the client still sends is read and dropped
            self.flow.resume_reading()
            self.counts.lingering += 1
            self._lingering = True
            self._clock = self.loop.call_later(LINGER, transport.close)
        else:
            transport.close()
