"""koner.json, the manifest of a model folder: its file names, the typed reader and the writer export uses.

This module is the only place that knows the manifest's keys. The runtime reads a `Manifest`; the export
step fills a `ManifestDraft` and writes it, and the draft is read back with `read_manifest` before it
counts as written, so a manifest that the runtime could not use is never left in a model folder.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import ManifestError, OnnxModelError

MANIFEST_FILE = "koner.json"
MODEL_FILE = "model.onnx"
MODEL_DATA_FILE = "model.onnx.data"  # the weights of model.onnx, page-aligned, mapped by onnxruntime
MODEL_FP32_FILE = "model-fp32.onnx"
TOKENIZER_FILE = "tokenizer.json"
PARITY_FILE = "parity.md"
FORMAT = 1  # the manifest layout this koner reads and writes


@dataclass(frozen=True)
class Manifest:
    """What the runtime needs from koner.json; `raw` keeps the whole document for reports."""

    labels: tuple[str, ...]
    max_length: int
    model_file: str
    tokenizer_file: str
    lowercase: bool
    quantized: bool  # the model quantizes activations at run time: one window per onnxruntime call
    prefused: bool  # export already applied onnxruntime's graph fusions to the model file
    per_token_scales: bool = False  # int8 with one activation scale per token: padded batches change nothing
    # int8 sums cannot saturate on x86 without VNNI: float, uint8 or 7-bit weights, or weight pairs limited
    saturation_safe: bool = True
    unk_id: Optional[int] = None  # the tokenizer's unknown-token id as transformers has it (None: read the tokenizer)
    inputs: Optional[tuple[str, ...]] = None  # the graph's inputs, as export wrote them
    scheme: Optional[str] = None  # the label scheme export detected or was told (scheme.py)
    tokenizer_max_length: Optional[int] = None  # transformers' model_max_length, where the tokenizer sets one
    data_file: Optional[str] = None  # the model file's external weights, when it has them
    file_bytes: dict = field(default_factory=dict, compare=False)  # size of each file the manifest hashed
    format: int = FORMAT
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    def check_data_file(self, folder: Path) -> None:
        """Raise OnnxModelError when the model's weights file is missing or not the size the manifest records."""
        if self.data_file is None:
            return
        path = Path(folder) / self.data_file
        if not path.is_file():
            raise OnnxModelError(path, f"missing: {self.model_file} keeps its weights there; copy the whole model "
                                       "folder, or re-export it with `koner export`")
        want, got = self.file_bytes.get(self.data_file), path.stat().st_size
        if want is not None and got != want:
            raise OnnxModelError(path, f"has {got:,} bytes but koner.json records {want:,}: the file is truncated "
                                       "or from another export; re-copy the model folder or re-export it")


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: Path) -> Manifest:
    """Parse and validate `folder/koner.json`."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(path, "missing; a koner model folder is written by `koner export SOURCE -o DIR`")
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(path, f"not valid JSON ({exc}); re-export the model with `koner export`") from None
    return parse_manifest(raw, path)


def parse_manifest(raw: object, path: Path) -> Manifest:
    """Validate a manifest document; `path` names it in errors."""
    if not isinstance(raw, dict):
        raise ManifestError(path, "must hold a JSON object; re-export the model with `koner export`")
    fmt = raw.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise ManifestError(path, f"'format' is {fmt!r}, not a format number; re-export the model with `koner export`")
    if fmt > FORMAT:
        raise ManifestError(path, f"format {fmt} was written by a newer koner (this one reads format {FORMAT}); "
                                  "upgrade koner: pip install -U koner")
    if fmt < FORMAT:
        raise ManifestError(path, f"format {fmt} is older than this koner's format {FORMAT}; re-export the model "
                                  "with this koner's `koner export`")
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
    if "quantization" not in raw or not isinstance(raw["quantization"], (dict, type(None))):
        raise ManifestError(path, "lacks 'quantization' (an object, or null for a float model); re-export the model "
                                  "with `koner export`")
    export = raw.get("export") or {}
    if not isinstance(export, dict):
        raise ManifestError(path, "'export' must be an object")
    data_file = raw.get("data_file")
    if data_file is not None and (not isinstance(data_file, str) or not data_file or "/" in data_file):
        raise ManifestError(path, "'data_file' must be a file name in the model folder")
    scheme = raw.get("scheme")
    if scheme is not None:
        from .scheme import SCHEMES

        if scheme not in SCHEMES:
            raise ManifestError(path, f"'scheme' is {scheme!r}, not one of {', '.join(SCHEMES)}; re-export the model "
                                      "with this koner's `koner export`")
    files = raw.get("files") or {}
    sizes = {n: f["bytes"] for n, f in files.items() if isinstance(f, dict) and isinstance(f.get("bytes"), int)} \
        if isinstance(files, dict) else {}
    return Manifest(
        labels=tuple(labels),
        max_length=max_length,
        model_file=str(raw.get("model_file", MODEL_FILE)),
        tokenizer_file=str(raw.get("tokenizer_file", TOKENIZER_FILE)),
        lowercase=bool(tok.get("lowercase", False)),
        quantized=raw["quantization"] is not None,
        prefused="graph_optimization" in export,
        per_token_scales=isinstance(raw["quantization"], dict) and raw["quantization"].get("activations") == "per-token",
        saturation_safe=_saturation_safe(raw["quantization"]),
        unk_id=tok.get("unk_id") if isinstance(tok.get("unk_id"), int) else None,
        inputs=tuple(raw["inputs"]) if isinstance(raw.get("inputs"), list) else None,
        scheme=raw["scheme"] if isinstance(raw.get("scheme"), str) else None,
        tokenizer_max_length=tok.get("model_max_length") if isinstance(tok.get("model_max_length"), int) and
        not isinstance(tok.get("model_max_length"), bool) and tok.get("model_max_length") >= 8 else None,
        data_file=data_file,
        file_bytes=sizes,
        format=fmt,
        raw=raw,
    )


def _saturation_safe(quant: Optional[dict]) -> bool:
    """Whether int8 weights written with these options keep every u8*s8 pair sum within 16 bits."""
    if not isinstance(quant, dict):
        return True
    return bool(quant.get("u8u8") or quant.get("reduce_range") or quant.get("limit_pairs"))


class ManifestDraft:
    """koner.json as the export step builds it, section by section, then writes and checks it."""

    def __init__(self, *, labels: list[str], max_length: int, lowercase: bool, vocab_size: int, embedding_rows: int,
                 source: dict, opset: int, validation_max_abs_logit_diff: float, keep_fp32: bool, versions: dict,
                 architecture: Optional[dict] = None, inputs: Optional[list[str]] = None,
                 unk_id: Optional[int] = None, scheme: Optional[str] = None,
                 tokenizer_max_length: Optional[int] = None):
        self._doc: dict = {
            "format": FORMAT,
            "labels": list(labels),
            "max_length": max_length,
            "model_file": MODEL_FILE,
            "tokenizer_file": TOKENIZER_FILE,
            "tokenizer": {"lowercase": lowercase, "vocab_size": vocab_size, "embedding_rows": embedding_rows},
            "source": source,
            "export": {"opset": opset, "validation_max_abs_logit_diff": validation_max_abs_logit_diff,
                       "keep_fp32": keep_fp32},
            "versions": versions,
        }
        if architecture is not None:
            self._doc["architecture"] = architecture
        if inputs is not None:
            self._doc["inputs"] = list(inputs)
        if unk_id is not None:
            self._doc["tokenizer"]["unk_id"] = unk_id
        if tokenizer_max_length is not None:
            self._doc["tokenizer"]["model_max_length"] = tokenizer_max_length
        if scheme is not None:
            self._doc["scheme"] = scheme

    def set_accuracy_aware(self, report: dict) -> None:
        """Record what accuracy-aware quantization kept in float and what it measured."""
        self._doc["accuracy_aware"] = report

    def set_quantization(self, options: Optional[dict]) -> None:
        """Record the quantization options (None: the model is float)."""
        self._doc["quantization"] = options

    def set_data_file(self, name: str) -> None:
        """Record that the model file keeps its weights in `name` beside it."""
        self._doc["data_file"] = name

    def set_graph_optimization(self, level: str, graph: Optional[dict] = None) -> None:
        """Record that the model file holds onnxruntime's fusions of `level` (and `graph`: koner's rewrites)."""
        self._doc["export"]["graph_optimization"] = level
        if graph is not None:
            self._doc["export"]["graph"] = graph

    def set_parity(self, summary: dict) -> None:
        """Record the parity suite's summary."""
        self._doc["parity"] = summary

    def to_dict(self) -> dict:
        """The document as it stands."""
        return self._doc

    def write(self, folder: Path, files: list[str]) -> Manifest:
        """Hash `files` of `folder` into the manifest, write koner.json there and read it back."""
        folder = Path(folder)
        self._doc["files"] = {n: {"sha256": sha256(folder / n), "bytes": (folder / n).stat().st_size} for n in files}
        path = folder / MANIFEST_FILE
        path.write_text(json.dumps(self._doc, indent=1, ensure_ascii=False) + "\n", "utf-8")
        return read_manifest(folder)
