"""The OpenAPI 3.1 document of `koner serve` (GET /openapi.json), built from the server's own settings, so its
limits are the ones the server enforces."""
from __future__ import annotations

from typing import Any

from ..aggregate import STRATEGIES, Strategy, check_decode
from ..decode import DECODES, Decode


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _viterbi_works(strategy: str) -> bool:
    try:
        check_decode(Strategy.parse(strategy), Decode.VITERBI)
    except ValueError:
        return False
    return True


def _one_of(key: str, values: list, default: str) -> dict:
    """An object whose `key` is one of `values`, a missing or null `key` standing for the server's `default`."""
    if default in values:
        return {"type": "object", "not": {"required": [key], "properties": {key: {"type": "string",
                                                                                   "not": {"enum": values}}}}}
    return {"type": "object", "required": [key], "properties": {key: {"enum": values}}}


def _viterbi_rule(settings: Any, aggregation: str) -> dict:
    """Viterbi decoding with a word-level aggregation is refused (422): the rule as a schema, for an object with the
    fields `decode` and `aggregation` (named so)."""
    word_level = [s for s in STRATEGIES if not _viterbi_works(s)]
    return {"not": {"allOf": [_one_of("decode", [Decode.VITERBI.value], settings.decode),
                              _one_of(aggregation, word_level, settings.aggregation)]}}


def document(settings: Any, version: str, ui: bool) -> dict:
    """The OpenAPI document for a server started with `settings` (koner.serving.settings.Settings)."""
    key = settings.api_key is not None
    connection = _connection_errors(settings)
    errors = _route_errors(settings, connection)
    security = [{"bearer": []}] if key else []
    auth = {"401": errors["401"]} if key else {}
    paths: dict = {**_entity_paths(settings, errors, security),
                   **_service_paths(settings, connection, auth, security)}
    if ui:
        for path, op, kind, what in (("/", "page", "text/html", "The demo page"),
                                     ("/ui.js", "ui_js", "text/javascript", "The demo page's script"),
                                     ("/ui.css", "ui_css", "text/css", "The demo page's stylesheet")):
            paths.setdefault(path, {})["get"] = {
                "summary": what + " (never needs the API key)", "operationId": op, "security": [],
                "responses": {"200": {"description": what, "content": {kind: {"schema": {"type": "string"}}}},
                              **connection}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "koner serve", "version": version,
                 "description": "Korean named-entity recognition. " + _limits(settings)},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}} if key else {},
            "schemas": _schemas(),
        },
    }


def _limits(settings: Any) -> str:
    """The request limits, in words."""
    return (f"At most {settings.max_texts} texts and {settings.max_chars:,} characters in all per request, "
            f"and a body of at most {settings.max_body_bytes:,} bytes (413 beyond: more texts than `maxItems`, "
            f"a text longer than `maxLength`, or texts longer than that together).")


def _too_many(settings: Any) -> str:
    """The answer to a connection over `--max-connections`, in words."""
    return (f"the server holds its {settings.max_connections} connections (too_many_connections; the "
            "connection is then closed); retry after the Retry-After seconds.")


def _connection_errors(settings: Any) -> dict:
    """The answers any route may get from the connection itself (connections.py) or before routing (hosts.py)."""
    too_many = _too_many(settings)
    connection = {
        "400": _error("The bytes are not an HTTP/1.1 request (invalid_http); the connection is closed."),
        "408": _error(f"The request, headers and body, did not arrive within {settings.read_timeout:g} s of its "
                      "first byte (read_timeout); the connection is closed."),
        "431": _error(f"The request line and headers are over {settings.max_header_bytes:,} bytes "
                      "(header_too_large); the connection is closed."),
        "503": _error("Too many connections: " + too_many),
    }
    if settings.allowed_hosts is not None:
        connection["421"] = _error(f"The Host header names a host this server does not answer for "
                                   f"(host_not_allowed); it answers for {settings.allowed_hosts}.")
    return connection


def _route_errors(settings: Any, connection: dict) -> dict:
    """Every answer but 200 of a route that runs the model: the connection's, then the request's and the model's."""
    limits, too_many = _limits(settings), _too_many(settings)
    errors = {
        **connection,
        "400": _error("The body is not JSON koner can read (invalid, not UTF-8, nested too deeply), or the bytes "
                      "are not an HTTP/1.1 request (invalid_http; the connection is closed)."),
        "413": _error(limits),
        "415": _error("The body is not sent as application/json."),
        "422": _error("Valid JSON that is not a valid request: a missing or non-string text, an unknown "
                      "aggregation or decoding, Viterbi with a word-level aggregation."),
        "503": _error("The model is still loading (not_ready), could not be loaded (model_failed), every slot "
                      "is busy and the queue is full (overloaded), or " + too_many),
        "504": _error(f"No answer within {settings.timeout:g} s, queue included."),
    }
    if settings.api_key is not None:
        errors["401"] = _error("No or a wrong API key; send 'Authorization: Bearer <key>'.")
    return errors


def _entity_paths(settings: Any, errors: dict, security: list) -> dict:
    """POST /v1/ner and POST / (the Hugging Face Inference API): their requests, answers and errors."""
    strategy = {"type": ["string", "null"], "enum": [*STRATEGIES, None], "default": settings.aggregation,
                "description": "null or absent: the server's default"}
    decode = {"type": ["string", "null"], "enum": [*DECODES, None], "default": settings.decode,
              "description": "viterbi works with aggregation none or simple; null or absent: the server's default"}
    viterbi = _viterbi_rule(settings, "aggregation")
    text = {"type": "string", "maxLength": settings.max_chars}
    texts = {"type": "array", "items": text, "maxItems": settings.max_texts}
    return {
        "/v1/ner": {"post": {
            "summary": "Entities of one text or of a list of texts",
            "operationId": "ner",
            "security": security,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                {"type": "object", "required": ["text"], "allOf": [{"not": {"required": ["texts"]}}, viterbi],
                 "properties": {"text": text, "aggregation": strategy, "decode": decode}},
                {"type": "object", "required": ["texts"], "allOf": [{"not": {"required": ["text"]}}, viterbi],
                 "properties": {"texts": {"oneOf": [texts, text]}, "aggregation": strategy, "decode": decode}},
            ]}}}},
            "responses": {"200": {"description": "Each text's entities, in input order; every entity is the "
                                                 "transformers pipeline's dict plus `text`, the exact slice",
                                  "content": {"application/json": {"schema": {"oneOf": [
                                      {"type": "object", "required": ["entities"], "additionalProperties": False,
                                       "properties": {"entities": {"$ref": "#/components/schemas/Entities"}}},
                                      {"type": "object", "required": ["results"], "additionalProperties": False,
                                       "properties": {"results": {"type": "array", "items": {
                                           "type": "object", "required": ["entities"], "additionalProperties": False,
                                           "properties": {"entities": {"$ref": "#/components/schemas/Entities"}}}}}},
                                  ]}}}},
                          **errors}}},
        "/": {"post": {
            "summary": "The Hugging Face Inference API's token-classification request and answer",
            "operationId": "hf_inference",
            "security": security,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["inputs"],
                "properties": {"inputs": {"oneOf": [text, texts]},
                               "parameters": {"type": ["object", "null"], "properties": {
                                   "aggregation_strategy": strategy, "decode": decode},
                                   **_viterbi_rule(settings, "aggregation_strategy")}}}}}},
            "responses": {"200": {"description": "A list of entities for a string input, a list of such lists for "
                                                 "a list input",
                                  "content": {"application/json": {"schema": {"anyOf": [  # [] is both
                                      {"$ref": "#/components/schemas/PipelineEntities"},
                                      {"type": "array", "items": {"$ref": "#/components/schemas/PipelineEntities"}},
                                  ]}}}},
                          **errors}}},
    }


def _service_paths(settings: Any, connection: dict, auth: dict, security: list) -> dict:
    """GET /healthz, /readyz, /metrics and /openapi.json."""
    too_many = _too_many(settings)
    return {
        "/healthz": {"get": {"summary": "Alive (never needs the API key, answers for any Host)",
                             "operationId": "healthz", "security": [],
                             "responses": {"200": {"description": "The process answers", "content": {
                                 "application/json": {"schema": {"type": "object", "required": ["status"],
                                                                 "properties": {"status": {"const": "ok"}}}}}},
                                           **{k: v for k, v in connection.items() if k != "421"}}}},
        "/readyz": {"get": {"summary": "Model loaded and warmed up", "operationId": "readyz", "security": security,
                            "responses": {"200": {"description": "Ready", "content": {"application/json": {"schema": {
                                "type": "object", "required": ["status", "int8_path"],
                                "properties": {"status": {"const": "ready"}, "int8_path": {
                                    "type": "string", "description": "this CPU's int8 kernels (koner.cpu)"},
                                    "check": {"$ref": "#/components/schemas/Check"}}}}}},
                                **connection,
                                "503": {"description": "not_ready while the model loads, model_failed if it could "
                                                       "not (or `--check` found the folder damaged), check_failed if "
                                                       "`--check` found decisive flips on this CPU, or " + too_many,
                                        "content": {"application/json": {"schema": {
                                            "type": "object", "required": ["error"], "additionalProperties": False,
                                            "properties": {"error": {
                                                "type": "object", "required": ["code", "message"],
                                                "additionalProperties": False, "properties": {
                                                    "code": {"type": "string"}, "message": {"type": "string"}}},
                                                           "check": {"$ref": "#/components/schemas/Check"}}}}}},
                                **auth}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics", "security": security,
                             "responses": {"200": {"description": "The exposition text format",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}},
                                           **connection, **auth}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {"application/json": {"schema": {"type": "object"}}}},
                                                **connection}}},
    }


def _schemas() -> dict:
    """The shared schemas: Check (`koner check`'s figures), Error, Entities (koner's, with `text`) and
    PipelineEntities (the pipeline's own)."""
    entity_common = {"score": {"type": "number", "minimum": 0, "maximum": 1}, "word": {"type": "string"},
                     "start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 0}}
    return {
        "Check": {"type": "object", "description": "`koner check`'s figures (koner serve --check)",
                  "required": ["passed", "exit_code", "int8_path"], "properties": {
                      "passed": {"type": "boolean"}, "exit_code": {"type": "integer"},
                      "failure": {"type": "string"},
                      "int8_path": {"type": "string"}, "exported_on": {"type": ["string", "null"]},
                      "files_verified": {"type": "integer"}, "files_checked": {"type": "integer"},
                      "damaged": {"type": "array", "items": {"type": "string"}},
                      "check_set": {"type": "boolean"}, "sentences": {"type": "integer"},
                      "identical_entity_lists": {"type": "integer"},
                      "tokenization_differs": {"type": "integer"}, "decisive_flips": {"type": "integer"},
                      "new_decisive_flips": {"type": "integer"}, "near_tie_flips": {"type": "integer"},
                      "exported_decisive_flips": {"type": "integer"}}},
        "Error": {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {
            "error": {"type": "object", "required": ["code", "message"], "additionalProperties": False,
                      "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
        "Entities": {"type": "array", "items": {"oneOf": [
            {"type": "object", "additionalProperties": False,
             "required": ["entity_group", "score", "word", "start", "end", "text"],
             "properties": {"entity_group": {"type": "string"}, **entity_common, "text": {"type": "string"}}},
            {"type": "object", "additionalProperties": False,
             "required": ["entity", "score", "index", "word", "start", "end", "text"],
             "properties": {"entity": {"type": "string"}, "index": {"type": "integer"}, **entity_common,
                            "text": {"type": "string"}}},
        ]}},
        "PipelineEntities": {"type": "array", "items": {"oneOf": [
            {"type": "object", "additionalProperties": False,
             "required": ["entity_group", "score", "word", "start", "end"],
             "properties": {"entity_group": {"type": "string"}, **entity_common}},
            {"type": "object", "additionalProperties": False,
             "required": ["entity", "score", "index", "word", "start", "end"],
             "properties": {"entity": {"type": "string"}, "index": {"type": "integer"}, **entity_common}},
        ]}},
    }
