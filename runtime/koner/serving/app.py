"""The Starlette application of `koner serve`, wired: routes, exception handlers, lifespan and the layers around.

Routes: POST /v1/ner (koner's format), POST / (Hugging Face Inference API's token-classification
format), GET /healthz, /readyz, /metrics, /openapi.json, and the demo page (GET /, /ui.js, /ui.css) unless
it is turned off. Every error body is {"error": {"code", "message"}}; no
response ever carries a traceback, and the access log records sizes, status and timings, never text. A client
that leaves, or whose body stops arriving, is an expected event: logged with its status (499, 408), no traceback.

A request goes AccessLog → HostCheck → ApiKey (`middleware`) → a `Routes` method (`routes`), which reads its body
(`requests`), runs it on the `Service` (`service`) and answers (`responses`).
"""
from __future__ import annotations

from typing import Callable, Optional

from starlette.applications import Starlette

from .. import __version__
from ..check import CheckReport
from ..ner import NER
from . import openapi
from .middleware import AccessLog, ApiKey, HostCheck
from .responses import EXCEPTION_HANDLERS
from .routes import Routes
from .service import Service
from .settings import Settings

__all__ = ["Settings", "create_app"]


def create_app(load: Callable[[], NER], settings: Settings,
               check: Optional[Callable[[], CheckReport]] = None) -> AccessLog:
    """The ASGI application; `load` builds the NER object (called once, on a background thread), after `check`
    (`koner check` of its folder) where given."""
    service = Service(load, settings, check)
    routes = Routes(service, openapi.document(settings, __version__, settings.ui))
    app = Starlette(routes=routes.table(), exception_handlers=EXCEPTION_HANDLERS, lifespan=service.lifespan)
    return AccessLog(HostCheck(ApiKey(app, settings.api_key), settings.allowed_hosts), service.metrics)
