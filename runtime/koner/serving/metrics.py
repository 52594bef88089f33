"""The service's Prometheus figures, in a registry of its own (never the process-global one)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# why the server closed a connection itself: one over --max-connections, a head over --max-header-bytes, a request
# not sent within --read-timeout, a request that is not HTTP/1.1
CONNECTION_CLOSES = ("max_connections", "header_too_large", "read_timeout", "invalid_http")


class Metrics:
    """Requests by route and status, latency, queue depth, in-flight work, texts, tokens, connections and process
    memory."""

    def __init__(self, queued: Callable[[], int], in_flight: Callable[[], int]):
        self.registry = CollectorRegistry()
        self.requests = Counter("koner_requests", "HTTP requests answered, by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("koner_request_seconds", "Time from request to response, by route", ["route"],
                                 buckets=BUCKETS, registry=self.registry)
        Gauge("koner_queue_depth", "Requests waiting for an inference slot",
              registry=self.registry).set_function(queued)
        Gauge("koner_in_flight", "Inference slots busy", registry=self.registry).set_function(in_flight)
        self.texts = Counter("koner_texts", "Texts run through the model", registry=self.registry)
        self.tokens = Counter("koner_tokens", "Tokens run through the model", registry=self.registry)
        self.cancelled = Counter("koner_cancelled", "Requests whose work was stopped because the client left or "
                                 "the deadline passed: before a slot took it (queued) or while it ran (running)",
                                 ["stage"], registry=self.registry)
        for stage in ("queued", "running"):
            self.cancelled.labels(stage)
        self.connections_closed = Counter("koner_connections_closed", "Connections the server closed itself: one "
                                          "over --max-connections (max_connections), a request line and headers "
                                          "over --max-header-bytes (header_too_large), a request not sent within "
                                          "--read-timeout (read_timeout), bytes that are not an HTTP/1.1 request "
                                          "(invalid_http)", ["reason"], registry=self.registry)
        for reason in CONNECTION_CLOSES:
            self.connections_closed.labels(reason)
        self._open_connections: Callable[[], int] = lambda: 0
        Gauge("koner_open_connections", "HTTP connections open, those being closed included",
              registry=self.registry).set_function(lambda: self._open_connections())
        from .. import __version__
        from ..cpu import int8_path

        Gauge("koner_info", "koner's version and the int8 path of this CPU (x86-vnni, x86-u8s8-saturating, "
              "arm64-dotprod, ...)", ["version", "int8_path"], registry=self.registry).labels(
                  __version__, int8_path()).set(1)
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, CPU seconds, open fds

    def watch_connections(self, open_connections: Callable[[], int]) -> None:
        """Report `open_connections()` as koner_open_connections."""
        self._open_connections = open_connections

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def text(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
