"""A request body → a typed request: the body read and parsed once (`read_json`: content type, size, JSON), then
checked by its shape, one function a shape (`v1_request`: koner's `POST /v1/ner`; `hf_request`: the Hugging Face
Inference API's `POST /`), within the server's limits. The entity options are parsed in one place
(`entity_options`). Every refusal is an `ApiError` whose message says what to send."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from starlette.requests import ClientDisconnect, Request

from .. import jsonl
from ..aggregate import STRATEGIES, Strategy
from ..decode import Decode
from .responses import ApiError, client_closed
from .settings import Settings

READ_TIMED_OUT = "koner.read_timed_out"  # scope key set by the connection when --read-timeout ended the body


@dataclass(frozen=True)
class NerRequest:
    """What a request asks for: its texts (within the limits), whether it sent a single text, its entity options."""

    texts: list[str]
    single: bool
    aggregation: Strategy  # the request's, else the server's --aggregation
    decode: Optional[Decode]  # the request's, else None: the model's own


async def read_json(request: Request, settings: Settings) -> object:
    """The body as JSON: application/json, at most `--max-body-bytes` (declared or sent), arrived in time."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "unsupported_media_type", f"send the body as application/json, not {ctype or 'nothing'}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise ApiError(413, "body_too_large", f"the body has {int(declared):,} bytes; the limit is "
                                              f"{settings.max_body_bytes:,} (--max-body-bytes)")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.max_body_bytes:
                raise ApiError(413, "body_too_large", f"the body is over the limit of "
                                                      f"{settings.max_body_bytes:,} bytes (--max-body-bytes)")
    except ClientDisconnect:
        if request.scope.get(READ_TIMED_OUT):
            raise ApiError(408, "read_timeout", f"the body did not arrive within {settings.read_timeout:g} s "
                                                "(--read-timeout)") from None
        raise client_closed() from None
    try:
        return jsonl.loads(bytes(body))
    except jsonl.JsonLineError as exc:
        raise ApiError(400, "invalid_json", f"the body is {exc}") from None


def v1_request(body: object, settings: Settings) -> NerRequest:
    """`POST /v1/ner`'s body: `{"text": "..."}` or `{"texts": ["...", ...]}`, optional `aggregation`, `decode`."""
    if not isinstance(body, dict) or ("text" in body) == ("texts" in body):
        raise ApiError(422, "invalid_request", 'send {"text": "..."} or {"texts": ["...", ...]}')
    field = "text" if "text" in body else "texts"
    texts, _ = texts_of(body[field], field, settings)
    if field == "text" and not isinstance(body["text"], str):
        raise ApiError(422, "invalid_text", "'text' must be a string (use 'texts' for a list)")
    return NerRequest(texts, field == "text", *entity_options(body.get("aggregation"), body.get("decode"), settings))


def hf_request(body: object, settings: Settings) -> NerRequest:
    """`POST /`'s body, the Hugging Face Inference API's: `{"inputs": "..." | [...], "parameters": {...}}`, whose
    parameters koner reads are `aggregation_strategy` and `decode`."""
    if not isinstance(body, dict) or "inputs" not in body:
        raise ApiError(422, "invalid_request", 'send {"inputs": "..."} or {"inputs": ["...", ...]}')
    params = body.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ApiError(422, "invalid_request", "'parameters' must be an object")
    texts, single = texts_of(body["inputs"], "inputs", settings)
    return NerRequest(texts, single, *entity_options(params.get("aggregation_strategy"), params.get("decode"),
                                                      settings))


def texts_of(value: object, field: str, settings: Settings) -> tuple[list[str], bool]:
    """The texts a request's `field` holds (a string or a list of strings, within `--max-texts` and `--max-chars`)
    and whether it was a single string."""
    single = isinstance(value, str)
    texts = [value] if single else value
    if not isinstance(texts, list):
        raise ApiError(422, "invalid_text", f"'{field}' must be a string or a list of strings")
    if len(texts) > settings.max_texts:
        raise ApiError(413, "too_many_texts", f"{len(texts)} texts in one request; the limit is "
                                              f"{settings.max_texts} (--max-texts)")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ApiError(422, "invalid_text", f"text {i} is {type(t).__name__}, not a string")
    chars = sum(len(t) for t in texts)
    if chars > settings.max_chars:
        raise ApiError(413, "too_many_chars", f"{chars:,} characters in one request; the limit is "
                                              f"{settings.max_chars:,} (--max-chars)")
    return texts, single


def entity_options(aggregation: object, decode: object, settings: Settings) -> tuple[Strategy, Optional[Decode]]:
    """A request's aggregation (the server's `--aggregation` when absent) and decoder (None when absent: the
    model's own), checked together with the server's options (`Settings.options`)."""
    strategy, decoder = Strategy.parse(settings.aggregation), None
    if aggregation is not None:
        try:
            strategy = Strategy.parse(aggregation)  # type: ignore[arg-type]
        except ValueError:
            raise ApiError(422, "invalid_aggregation", f"aggregation must be one of {', '.join(STRATEGIES)}, "
                                                       f"not {aggregation!r}") from None
    try:
        if decode is not None:
            decoder = Decode.parse(decode)  # type: ignore[arg-type]
        settings.options.override(aggregation=strategy, decode=decoder)  # viterbi with a word-level strategy
    except ValueError as exc:
        raise ApiError(422, "invalid_decode", str(exc)) from None
    return strategy, decoder
