"""The Starlette application of `koner serve`: routes, input checks, errors, API key and access log.

Routes: POST /v1/ner (koner's format), POST / (Hugging Face Inference API's token-classification
format), GET /healthz, /readyz, /metrics, /openapi.json, and the demo page (GET /, /ui.js, /ui.css) unless
it is turned off. Every error body is {"error": {"code", "message"}}; no
response ever carries a traceback, and the access log records sizes, status and timings, never text. A client
that leaves, or whose body stops arriving, is an expected event: logged with its status (499, 408), no traceback.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
from typing import Callable, Optional

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..cpu import int8_path
from ..aggregate import Strategy
from ..check import CheckReport
from ..decode import Decode
from ..ner import NER
from . import openapi, ui
from .gate import ClientGone, Gate, Overloaded, Stopped, TimedOut
from .hosts import AllowedHosts
from .metrics import CONTENT_TYPE, Metrics
from .requests import hf_request, read_json, v1_request
from .responses import EXCEPTION_HANDLERS, ApiError, JSONResponse, client_closed, error_response
from .settings import Settings

access_log = logging.getLogger("koner.access")
log = logging.getLogger("koner.serve")


class Service:
    """The model (loaded in the background), the gate to its slots and the metrics."""

    def __init__(self, load: Callable[[], NER], settings: Settings,
                 check: Optional[Callable[[], CheckReport]] = None):
        self.settings = settings
        self.metrics = Metrics(lambda: self.gate.queued, lambda: self.gate.in_flight)
        self.gate = Gate(settings.workers, settings.max_queue,
                         on_cancel=lambda stage: self.metrics.cancelled.labels(stage).inc())
        self.ner: Optional[NER] = None
        self.load_error: Optional[str] = None
        self.check: Optional[dict] = None  # `koner check`'s figures, when the server was started with --check
        self._load = load
        self._check = check

    def start(self) -> None:
        """Load and warm the model on a thread, so /healthz answers while it loads."""
        threading.Thread(target=self._load_model, name="koner-load", daemon=True).start()

    def _load_model(self) -> None:
        try:
            if self._check is not None and not self._checked():
                return
            ner = self._load()
            ner("서울역으로 안내해줘.")  # warm-up: the first run allocates what later runs reuse
            self.ner = ner
            log.info("model ready: %s (%d slots)", ner.folder, self.settings.workers)
        except Exception as exc:  # reported by /readyz and every inference route
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", self.load_error)

    def _checked(self) -> bool:
        """Run `koner check`; False (and the model not loaded) when the folder is damaged."""
        assert self._check is not None
        report = self._check()
        self.check = report.to_dict()
        for line in report.lines():
            log.info("check: %s", line)
        if report.damaged:
            self.load_error = "koner check: the model folder is damaged: " + "; ".join(report.damaged)
            log.error("model not loaded: %s", self.load_error)
            return False
        return True

    async def entities(self, request: Request, texts: list[str], aggregation: Strategy,
                       decode: Optional[Decode] = None) -> list[list[dict]]:
        """Each text's entities as dicts (pipeline fields + `text`), computed on a slot."""
        ner = self.ner
        if ner is None:
            if self.load_error:
                raise ApiError(503, "model_failed", f"the model could not be loaded: {self.load_error}")
            raise ApiError(503, "not_ready", "the model is still loading; retry shortly", {"Retry-After": "1"})

        def work(cancel: threading.Event) -> tuple[list[list[dict]], int]:
            def check() -> None:  # before each text and each window of the model, whatever the text holds
                if cancel.is_set():
                    raise Stopped()

            out, tokens = [], 0
            for text in texts:
                check()
                toks = ner.tokenize(text)
                tokens += len(toks.ids) - 2
                out.append([{**e.to_dict(), "text": e.text} for e in ner.iter_entities(
                    text, aggregation=aggregation, decode=decode, workers=1, tokens=toks, poll=check)])
            return out, tokens

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout
        try:
            results, tokens = await self.gate.run(work, deadline=deadline,
                                                  disconnected=lambda: _disconnect(request))
        except Overloaded:
            raise ApiError(503, "overloaded", f"all {self.settings.workers} slots are busy and "
                                              f"{self.settings.max_queue} requests are waiting; retry shortly",
                           {"Retry-After": "1"}) from None
        except TimedOut:
            raise ApiError(504, "timeout", f"no answer within {self.settings.timeout:g} s (--timeout)") from None
        except ClientGone:
            raise client_closed() from None
        self.metrics.texts.inc(len(texts))
        self.metrics.tokens.inc(tokens)
        return results


async def _disconnect(request: Request) -> None:
    """Return when the client disconnects (the request body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def create_app(load: Callable[[], NER], settings: Settings,
               check: Optional[Callable[[], CheckReport]] = None) -> "AccessLog":
    """The ASGI application; `load` builds the NER object (called once, on a background thread), after `check`
    (`koner check` of its folder) where given."""
    service = Service(load, settings, check)

    async def v1_ner(request: Request) -> Response:
        asked = v1_request(await read_json(request, settings), settings)
        results = await service.entities(request, asked.texts, asked.aggregation, asked.decode)
        if asked.single:
            return JSONResponse({"entities": results[0]})
        return JSONResponse({"results": [{"entities": r} for r in results]})

    async def hf_inference(request: Request) -> Response:
        asked = hf_request(await read_json(request, settings), settings)
        results = await service.entities(request, asked.texts, asked.aggregation, asked.decode)
        plain = [[{k: v for k, v in e.items() if k != "text"} for e in r] for r in results]  # the API's own fields
        return JSONResponse(plain[0] if asked.single else plain)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checked = {} if service.check is None else {"check": service.check}
        if service.ner is not None:
            if service.check is not None and not service.check["passed"]:
                return JSONResponse({"error": {"code": "check_failed", "message": f"koner check: "
                                               f"{service.check['failure']}; see the server's log and `koner "
                                               "check`"}, **checked}, status_code=503)
            return JSONResponse({"status": "ready", "int8_path": int8_path(), **checked})
        if service.load_error:
            return JSONResponse({"error": {"code": "model_failed", "message": "the model could not be loaded: "
                                           f"{service.load_error}"}, **checked}, status_code=503)
        return error_response(503, "not_ready", "the model is still loading", {"Retry-After": "1"})

    async def metrics(request: Request) -> Response:
        return Response(service.metrics.text(), media_type=CONTENT_TYPE)

    from .. import __version__

    spec = openapi.document(settings, __version__, settings.ui)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(spec)

    def types() -> tuple[str, ...]:
        return service.ner.entity_types if service.ner is not None else ui.default_types()

    async def page(request: Request) -> Response:
        return HTMLResponse(ui.page(types(), settings.api_key is not None, settings.aggregation, settings.decode),
                            headers=ui.HEADERS)

    async def script(request: Request) -> Response:
        return Response(ui.SCRIPT, media_type="text/javascript", headers=ui.HEADERS)

    async def stylesheet(request: Request) -> Response:
        return Response(ui.stylesheet(types()), media_type="text/css", headers=ui.HEADERS)

    root = ["POST", "GET"] if settings.ui else ["POST"]

    async def root_route(request: Request) -> Response:
        return await (page(request) if request.method in ("GET", "HEAD") else hf_inference(request))

    routes = [Route("/v1/ner", v1_ner, methods=["POST"]), Route("/", root_route, methods=root),
              Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"]), Route("/openapi.json", openapi_json, methods=["GET"])]
    if settings.ui:
        routes += [Route("/ui.js", script, methods=["GET"]), Route("/ui.css", stylesheet, methods=["GET"])]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.start()
        yield
        service.gate.close()

    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    return AccessLog(HostCheck(ApiKey(app, settings.api_key), settings.allowed_hosts), service.metrics)


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
