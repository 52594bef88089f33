"""The Starlette application of `koner serve`: routes, input checks, errors, API key and access log.

Routes: POST /v1/ner (koner's format), POST / (Hugging Face Inference API's token-classification
format), GET /healthz, /readyz, /metrics, /openapi.json, and the demo page (GET /, /ui.js, /ui.css) unless
it is turned off. Every error body is {"error": {"code", "message"}}; no
response ever carries a traceback, and the access log records sizes, status and timings, never text. A client
that leaves, or whose body stops arriving, is an expected event: logged with its status (499, 408), no traceback.
"""
from __future__ import annotations

from typing import Callable, Optional

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..cpu import int8_path
from ..check import CheckReport
from ..ner import NER
from . import openapi, ui
from .metrics import CONTENT_TYPE
from .middleware import AccessLog, ApiKey, HostCheck
from .requests import hf_request, read_json, v1_request
from .responses import EXCEPTION_HANDLERS, JSONResponse, error_response
from .service import Service
from .settings import Settings


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

    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=service.lifespan)
    return AccessLog(HostCheck(ApiKey(app, settings.api_key), settings.allowed_hosts), service.metrics)
