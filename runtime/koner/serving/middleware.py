"""The ASGI layers around the routes, outermost first: `AccessLog` (one JSON line and the request metrics per
request), `HostCheck` (the Host allow-list, 421) and `ApiKey` (the bearer key, 401). Each answers a refusal in the
routes' error body before any route runs."""
from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Optional

from .hosts import AllowedHosts
from .metrics import Metrics
from .responses import error_response

access_log = logging.getLogger("koner.access")


class HostCheck:
    """ASGI middleware: with an allow-list, a request whose `Host` header names another host gets 421 (but
    /healthz, which holds no data): a web page whose domain resolves to this machine (DNS rebinding) cannot use it
    through a browser."""

    def __init__(self, app, allowed: Optional[AllowedHosts]):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope, receive, send):
        if self.allowed is None or scope["type"] != "http" or scope["path"] == "/healthz":
            return await self.app(scope, receive, send)
        host = next((value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"host"), None)
        if not self.allowed.allows(host):
            resp = error_response(421, "host_not_allowed", "this server does not answer for the host in the Host "
                                                           f"header; it answers for {self.allowed} (--allowed-hosts)")
            return await resp(scope, receive, send)
        return await self.app(scope, receive, send)


class ApiKey:
    """ASGI middleware: with a key set, every route needs `Authorization: Bearer <key>` but /healthz, the
    OpenAPI document and the demo page's files (which hold no data; the page asks for the key)."""

    PUBLIC = {"/healthz", "/openapi.json", "/ui.js", "/ui.css"}

    def __init__(self, app, key: Optional[str]):
        self.app, self.key = app, key.encode() if key else None

    async def __call__(self, scope, receive, send):
        if self.key is None or scope["type"] != "http" or scope["path"] in self.PUBLIC or \
                (scope["path"] == "/" and scope["method"] in ("GET", "HEAD")):
            return await self.app(scope, receive, send)
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if not hmac.compare_digest(given, self.key):
            resp = error_response(401, "unauthorized", "send the API key as 'Authorization: Bearer <key>'",
                                  {"WWW-Authenticate": "Bearer"})
            return await resp(scope, receive, send)
        return await self.app(scope, receive, send)


class AccessLog:
    """ASGI middleware: one JSON line per request (method, route, status, bytes, ms) and the request metrics."""

    ROUTES = {"/v1/ner", "/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/ui.js", "/ui.css"}

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    def connection_closed(self, reason: str, status: Optional[int]) -> None:
        """Count a connection the server closed itself (connections.py) and log its answer, if it wrote one."""
        self.metrics.connections_closed.labels(reason).inc()
        if status is not None and access_log.isEnabledFor(logging.INFO):
            access_log.info(json.dumps({"connection_closed": reason, "status": status}))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        seen = {"status": 500, "out": 0, "in": 0}

        async def counting_receive():
            msg = await receive()
            if msg["type"] == "http.request":
                seen["in"] += len(msg.get("body", b""))
            return msg

        async def counting_send(msg):
            if msg["type"] == "http.response.start":
                seen["status"] = msg["status"]
            elif msg["type"] == "http.response.body":
                seen["out"] += len(msg.get("body", b""))
            await send(msg)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            secs = time.perf_counter() - t0
            route = scope["path"] if scope["path"] in self.ROUTES else "other"
            self.metrics.observe(route, seen["status"], secs)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(json.dumps({"method": scope["method"], "route": route, "status": seen["status"],
                                            "bytes_in": seen["in"], "bytes_out": seen["out"],
                                            "ms": round(secs * 1000, 2)}))
