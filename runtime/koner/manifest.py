"""Reads and checks koner.json, the manifest the export step writes beside model.onnx."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ManifestError

MANIFEST = "koner.json"
FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    """What the runtime needs from koner.json; `raw` keeps the whole document."""

    labels: tuple[str, ...]
    max_length: int
    model_file: str
    tokenizer_file: str
    lowercase: bool
    raw: dict = field(repr=False, compare=False)


def read_manifest(folder: Path) -> Manifest:
    """Parse and validate `folder/koner.json`."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ManifestError(path, "missing; a koner model folder is written by `koner export SOURCE -o DIR`")
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(path, f"not valid JSON ({exc}); re-export the model with `koner export`") from None
    if not isinstance(raw, dict):
        raise ManifestError(path, "must hold a JSON object; re-export the model with `koner export`")
    if raw.get("format") != FORMAT:
        raise ManifestError(path, f"format {raw.get('format')!r} is not {FORMAT}; re-export with this koner version")
    labels = raw.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(l, str) and l for l in labels):
        raise ManifestError(path, "'labels' must be a non-empty list of label names in id order")
    if len(set(labels)) != len(labels):
        raise ManifestError(path, "'labels' lists a label twice")
    max_length = raw.get("max_length")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 8:
        raise ManifestError(path, "'max_length' must be the model's position count (an integer, e.g. 512)")
    tok = raw.get("tokenizer") or {}
    if not isinstance(tok, dict):
        raise ManifestError(path, "'tokenizer' must be an object")
    return Manifest(
        labels=tuple(labels),
        max_length=max_length,
        model_file=str(raw.get("model_file", "model.onnx")),
        tokenizer_file=str(raw.get("tokenizer_file", "tokenizer.json")),
        lowercase=bool(tok.get("lowercase", False)),
        raw=raw,
    )
