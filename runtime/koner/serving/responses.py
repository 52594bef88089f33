"""The server's answers: JSON by koner's one rule, the error body every route uses (`{"error": {"code",
"message"}}`), `ApiError` for an answer other than 200, and the handlers that turn every exception into one (never a
traceback)."""
from __future__ import annotations

import logging
from typing import Optional

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse as StarletteJSON, Response

from .. import jsonl

log = logging.getLogger("koner.serve")


class JSONResponse(StarletteJSON):
    """A JSON answer written by koner's one JSON rule: UTF-8, with \\u escapes where lone surrogates are (an
    entity's text keeps what the request sent, and a request may escape surrogates)."""

    def render(self, content: object) -> bytes:
        return jsonl.dumps(content, separators=(",", ":")).encode("utf-8")


class ApiError(Exception):
    """An answer other than 200: status, a stable code and a message for the client."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: Optional[dict] = None) -> JSONResponse:
    """The JSON error body every route uses."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def client_closed() -> ApiError:
    """The answer counted for a request whose client disconnected before it was ready (nobody receives it)."""
    return ApiError(499, "client_closed", "the client disconnected before its answer was ready")


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own refusals (no such route, a method the route does not take) in the error body."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


async def api_error(request: Request, exc: ApiError) -> Response:
    """An `ApiError` as its answer."""
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
    """A client that left: answered 499, which nobody reads; the access log and metrics count it."""
    return await api_error(request, client_closed())


async def internal_error(request: Request, exc: Exception) -> Response:
    """Anything else: 500 and the exception's type in the log (no text, no traceback)."""
    log.error("internal error on %s: %s", request.url.path, type(exc).__name__)
    return error_response(500, "internal", "internal error; the server log has its type")


EXCEPTION_HANDLERS = {HTTPException: http_error, ApiError: api_error, ClientDisconnect: client_gone,
                      Exception: internal_error}
