"""The routes of `koner serve`: one method a route on `Routes`, registered in one table (`Routes.table`).

A request is read and checked by `requests` (one function a body shape), its texts run by the `Service`, and the
answer written by `responses`; a refusal anywhere is an `ApiError`, answered by `responses.EXCEPTION_HANDLERS`.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..cpu import int8_path
from . import ui
from .metrics import CONTENT_TYPE
from .requests import hf_request, read_json, v1_request
from .responses import JSONResponse, error_response
from .service import Service


class Routes:
    """The handlers of one server: its `Service` (model, gate, metrics), its settings and its OpenAPI document."""

    def __init__(self, service: Service, spec: dict):
        self.service, self.settings, self.spec = service, service.settings, spec

    def table(self) -> list[Route]:
        """Every route: its path, its handler and the methods it takes (HEAD comes with GET)."""
        ui_on = self.settings.ui
        rows = [("/v1/ner", self.v1_ner, ["POST"]),
                ("/", self.root, ["POST", "GET"] if ui_on else ["POST"]),
                ("/healthz", self.healthz, ["GET"]),
                ("/readyz", self.readyz, ["GET"]),
                ("/metrics", self.metrics, ["GET"]),
                ("/openapi.json", self.openapi_json, ["GET"])]
        if ui_on:
            rows += [("/ui.js", self.script, ["GET"]), ("/ui.css", self.stylesheet, ["GET"])]
        return [Route(path, handler, methods=methods) for path, handler, methods in rows]

    async def v1_ner(self, request: Request) -> Response:
        """POST /v1/ner: koner's format, each entity the pipeline's dict plus `text`, in input order."""
        asked = v1_request(await read_json(request, self.settings), self.settings)
        results = await self.service.entities(request, asked.texts, asked.aggregation, asked.decode)
        if asked.single:
            return JSONResponse({"entities": results[0]})
        return JSONResponse({"results": [{"entities": r} for r in results]})

    async def root(self, request: Request) -> Response:
        """/: GET (and HEAD) the demo page, POST the Hugging Face Inference API."""
        return await (self.page(request) if request.method in ("GET", "HEAD") else self.hf_inference(request))

    async def hf_inference(self, request: Request) -> Response:
        """POST /: the Hugging Face Inference API's token-classification request and answer (its own fields)."""
        asked = hf_request(await read_json(request, self.settings), self.settings)
        results = await self.service.entities(request, asked.texts, asked.aggregation, asked.decode)
        plain = [[{k: v for k, v in e.items() if k != "text"} for e in r] for r in results]  # the API's own fields
        return JSONResponse(plain[0] if asked.single else plain)

    async def healthz(self, request: Request) -> Response:
        """GET /healthz: alive."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """GET /readyz: the model loaded and warmed up (and its check passed), else 503 saying why."""
        service = self.service
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

    async def metrics(self, request: Request) -> Response:
        """GET /metrics: the Prometheus exposition."""
        return Response(self.service.metrics.text(), media_type=CONTENT_TYPE)

    async def openapi_json(self, request: Request) -> Response:
        """GET /openapi.json: the OpenAPI document of this server's settings."""
        return JSONResponse(self.spec)

    async def page(self, request: Request) -> Response:
        """GET /: the demo page."""
        settings = self.settings
        return HTMLResponse(ui.page(self._types(), settings.api_key is not None, settings.aggregation,
                                    settings.decode), headers=ui.HEADERS)

    async def script(self, request: Request) -> Response:
        """GET /ui.js: the demo page's script."""
        return Response(ui.SCRIPT, media_type="text/javascript", headers=ui.HEADERS)

    async def stylesheet(self, request: Request) -> Response:
        """GET /ui.css: the demo page's stylesheet, a colour per entity type."""
        return Response(ui.stylesheet(self._types()), media_type="text/css", headers=ui.HEADERS)

    def _types(self) -> tuple[str, ...]:
        ner = self.service.ner
        return ner.entity_types if ner is not None else ui.default_types()
