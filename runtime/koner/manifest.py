"""koner.json, the manifest of a model folder: its file names, the typed reader and the writer export uses.

This module is the only place that knows the manifest's keys. The runtime reads a `Manifest`; the export
step fills a `ManifestDraft` and writes it, and the draft is read back with `read_manifest` before it
counts as written, so a manifest that the runtime could not use is never left in a model folder.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, TypeGuard

from .errors import ManifestError, OutsideFolderError

MANIFEST_FILE = "koner.json"
MODEL_FILE = "model.onnx"
MODEL_DATA_FILE = "model.onnx.data"  # the weights of model.onnx, page-aligned, mapped by onnxruntime
MODEL_FP32_FILE = "model-fp32.onnx"
TOKENIZER_FILE = "tokenizer.json"
PARITY_FILE = "parity.md"
CHECK_FILE = "check-set.json"  # export's answers on a few sentences, for `koner check` (koner.check reads it)
FORMAT = 1  # the manifest layout this koner reads and writes
# labels a folder may list: every label pair gets a grouping rule at load, so load time grows with its square
MAX_LABELS = 1024
MAX_MANIFEST_BYTES = 1 << 22  # koner.json is a few KB; a larger file is not a manifest
MAX_LENGTH = 1 << 20  # no encoder koner runs has more positions than this
_SHA256 = re.compile("[0-9a-f]{64}")


@dataclass(frozen=True)
class FileRecord:
    """What koner.json records of one file of the folder."""

    sha256: str
    bytes: int


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
    files: dict = field(default_factory=dict, compare=False)  # name -> FileRecord of each file export hashed
    architecture: Optional[str] = None  # transformers' model_type, where export recorded it
    position_offset: Optional[int] = None  # position-table rows before the first token's, where export recorded it
    format: int = FORMAT
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def check_file(self) -> Optional[str]:
        """The check set's file name when export recorded one (older folders have none)."""
        return CHECK_FILE if CHECK_FILE in self.files else None


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    import hashlib  # here: it loads OpenSSL (3.5 MB RSS), which a load whose hashes are remembered never needs

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def plain_name(name: object) -> TypeGuard[str]:
    """Whether `name` is a plain file name: no folder part, no `..`, not absolute, printable."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name and
            name.isprintable() and len(name) <= 255)


def inside(folder: Path, name: str) -> bool:
    """Whether `folder/name`, symlinks followed, is a file within `folder` (symlinks followed too)."""
    root = Path(folder).resolve()
    return (root / name).resolve().is_relative_to(root)


def read_manifest(folder: Path) -> Manifest:
    """Parse and validate `folder/koner.json`; every fault is a ManifestError that says what to do."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(path, "missing; a koner model folder is written by `koner export SOURCE -o DIR`")
    if not inside(folder, MANIFEST_FILE):
        raise ManifestError(path, "is a link to a file outside the model folder; copy the real file into the folder")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError(path, f"cannot be read ({exc.strerror or exc}); check its permissions") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(path, f"is over {MAX_MANIFEST_BYTES:,} bytes, not a koner manifest (a few KB); "
                                  "re-export the model with `koner export`")
    try:
        raw = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ManifestError(path, "not valid JSON (nested too deeply); re-export the model with `koner export`") \
            from None
    except json.JSONDecodeError as exc:
        raise ManifestError(path, f"not valid JSON ({_short(exc)}); re-export the model with `koner export`") \
            from None
    except ValueError:  # not UTF-8, or a number of thousands of digits (Python refuses to convert it)
        raise ManifestError(path, "not a koner manifest (not UTF-8 text, or a number thousands of digits long); "
                                  "re-export the model with `koner export`") from None
    return parse_manifest(raw, path)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _flag(section: dict, key: str, path: Path, where: str) -> bool:
    """A true/false setting (absent: false); a string such as "false" is refused, not read as true."""
    value = section.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ManifestError(path, f"{where}'{key}' is {_show(value)}, not true or false; re-export the model with "
                                  "`koner export`")
    return value


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (str, bool, type(None))) else \
        type(value).__name__ if not _is_int(value) else str(value) if abs(value) < 10 ** 15 else "a huge integer"
    return text if len(text) <= 40 else text[:40] + "…"


def _file_name(raw: dict, key: str, default: str, path: Path) -> str:
    name = raw.get(key, default)
    if not plain_name(name):
        raise OutsideFolderError(path, f"'{key}' is {_show(name)}: it must be a plain file name in the model "
                                       "folder (no folder, no '..', not absolute); re-export the model with "
                                       "`koner export`")
    assert isinstance(name, str)
    return name


def _files(raw: dict, path: Path) -> dict:
    files = raw.get("files")
    if files is None:
        return {}
    if not isinstance(files, dict):
        raise ManifestError(path, "'files' must be an object of file name -> {sha256, bytes}; re-export the model")
    out = {}
    for name, rec in files.items():
        if not plain_name(name):
            raise OutsideFolderError(path, f"'files' names {_show(name)}: only plain file names in the model "
                                           "folder are allowed; re-export the model with `koner export`")
        if not (isinstance(rec, dict) and isinstance(rec.get("sha256"), str) and _SHA256.fullmatch(rec["sha256"])
                and _is_int(rec.get("bytes")) and 0 <= rec["bytes"] < 1 << 50):
            raise ManifestError(path, f"'files' entry of {name} must be {{\"sha256\": 64 hex digits, \"bytes\": a "
                                      "size}; re-export the model with `koner export`")
        out[name] = FileRecord(rec["sha256"], rec["bytes"])
    return out


def parse_manifest(raw: object, path: Path) -> Manifest:
    """Validate a manifest document; `path` names it in errors."""
    if not isinstance(raw, dict):
        raise ManifestError(path, "must hold a JSON object; re-export the model with `koner export`")
    fmt = _format(raw, path)
    labels = _labels(raw, path)
    max_length = raw.get("max_length")
    if not _is_int(max_length) or not 8 <= max_length <= MAX_LENGTH:
        raise ManifestError(path, f"'max_length' is {_show(max_length)}: it must be the model's position count "
                                  f"(an integer from 8 to {MAX_LENGTH:,}, e.g. 512); re-export the model")
    lowercase, unk_id, tok_max = _tokenizer(raw, path)
    quant = _quantization(raw, path)
    export = raw.get("export") or {}
    if not isinstance(export, dict):
        raise ManifestError(path, "'export' must be an object")
    inputs = raw.get("inputs")
    if inputs is not None and not (isinstance(inputs, list) and all(isinstance(i, str) for i in inputs)):
        raise ManifestError(path, "'inputs' must be a list of the graph's input names; re-export the model")
    scheme = _scheme(raw, path)
    model_type, offset = _architecture(raw, path)
    return Manifest(
        labels=tuple(labels),
        max_length=max_length,
        model_file=_file_name(raw, "model_file", MODEL_FILE, path),
        tokenizer_file=_file_name(raw, "tokenizer_file", TOKENIZER_FILE, path),
        lowercase=lowercase,
        quantized=quant is not None,
        prefused="graph_optimization" in export,
        per_token_scales=isinstance(quant, dict) and quant.get("activations") == "per-token",
        saturation_safe=_saturation_safe(quant),
        unk_id=unk_id,
        inputs=tuple(inputs) if inputs is not None else None,
        scheme=scheme,
        tokenizer_max_length=tok_max if tok_max is not None and tok_max >= 8 else None,
        data_file=_file_name(raw, "data_file", "", path) if raw.get("data_file") is not None else None,
        files=_files(raw, path),
        architecture=model_type if isinstance(model_type, str) else None,
        position_offset=offset,
        format=fmt,
        raw=raw,
    )


def _format(raw: dict, path: Path) -> int:
    fmt = raw.get("format")
    if not _is_int(fmt):
        raise ManifestError(path, f"'format' is {_show(fmt)}, not a format number; re-export the model with "
                                  "`koner export`")
    if fmt > FORMAT:
        raise ManifestError(path, f"format {_show(fmt)} was written by a newer koner (this one reads format "
                                  f"{FORMAT}); upgrade koner: pip install -U koner")
    if fmt < FORMAT:
        raise ManifestError(path, f"format {_show(fmt)} is older than this koner's format {FORMAT}; re-export the "
                                  "model with this koner's `koner export`")
    return fmt


def _labels(raw: dict, path: Path) -> list[str]:
    labels = raw.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(l, str) and l for l in labels):
        raise ManifestError(path, "'labels' must be a non-empty list of label names in id order")
    if len(set(labels)) != len(labels):
        raise ManifestError(path, "'labels' lists a label twice")
    if len(labels) > MAX_LABELS:
        raise ManifestError(path, f"'labels' lists {len(labels):,} labels; koner takes at most {MAX_LABELS:,} (a "
                                  "token classifier's head has one per label)")
    return labels


def _tokenizer(raw: dict, path: Path) -> tuple[bool, Optional[int], Optional[int]]:
    """The tokenizer section: (lowercase, unk_id, model_max_length)."""
    tok = raw.get("tokenizer") or {}
    if not isinstance(tok, dict):
        raise ManifestError(path, "'tokenizer' must be an object")
    lowercase = _flag(tok, "lowercase", path, "'tokenizer'.")
    unk_id = tok.get("unk_id")
    if unk_id is not None and (not _is_int(unk_id) or not -1 <= unk_id < 1 << 31):
        raise ManifestError(path, f"'tokenizer'.'unk_id' is {_show(unk_id)}, not a token id; re-export the model")
    tok_max = tok.get("model_max_length")
    if tok_max is not None and not _is_int(tok_max):
        raise ManifestError(path, f"'tokenizer'.'model_max_length' is {_show(tok_max)}, not an integer; re-export "
                                  "the model")
    return lowercase, unk_id, tok_max


def _quantization(raw: dict, path: Path) -> Optional[dict]:
    if "quantization" not in raw or not isinstance(raw["quantization"], (dict, type(None))):
        raise ManifestError(path, "lacks 'quantization' (an object, or null for a float model); re-export the model "
                                  "with `koner export`")
    quant = raw["quantization"]
    if isinstance(quant, dict):
        for key in ("u8u8", "reduce_range", "limit_pairs", "per_channel"):
            _flag(quant, key, path, "'quantization'.")
        if quant.get("activations") is not None and not isinstance(quant["activations"], str):
            raise ManifestError(path, "'quantization'.'activations' must be a string; re-export the model")
    return quant


def _scheme(raw: dict, path: Path) -> Optional[str]:
    scheme = raw.get("scheme")
    if scheme is not None:
        from .scheme import SCHEMES

        if not isinstance(scheme, str) or scheme not in SCHEMES:
            shown = repr(scheme) if isinstance(scheme, str) else _show(scheme)
            raise ManifestError(path, f"'scheme' is {shown}, not one of {', '.join(SCHEMES)}; re-export the model "
                                      "with this koner's `koner export`")
    return scheme


def _architecture(raw: dict, path: Path) -> tuple[object, Optional[int]]:
    """The architecture section: (model_type as written, position_offset)."""
    arch = raw.get("architecture")
    if arch is not None and not isinstance(arch, dict):
        raise ManifestError(path, "'architecture' must be an object; re-export the model with `koner export`")
    arch = arch or {}
    offset = arch.get("position_offset")
    if offset is not None and (not _is_int(offset) or not 0 <= offset <= 16):
        raise ManifestError(path, f"'architecture'.'position_offset' is {_show(offset)}, not a small row count; "
                                  "re-export the model with `koner export`")
    return arch.get("model_type"), offset


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

    @classmethod
    def of(cls, manifest: Manifest) -> "ManifestDraft":
        """A draft holding an existing manifest's document, to add to it and write it again."""
        draft = cls.__new__(cls)
        draft._doc = json.loads(json.dumps({k: v for k, v in manifest.raw.items() if k != "files"}))
        return draft

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
