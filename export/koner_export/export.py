"""`koner export`: a fine-tuned checkpoint -> a validated, int8-quantized, self-contained model folder."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from koner import atomic
from koner.scheme import Scheme, check as check_scheme, detect
from koner.manifest import (CHECK_FILE, MODEL_DATA_FILE, MODEL_FILE, MODEL_FP32_FILE, PARITY_FILE, TOKENIZER_FILE,
                            ManifestDraft)

from .checkpoint import load
from .environment import versions
from .corpus import read_jsonl
from .errors import ExportError, OutputExistsError, ParityError, ParityNotRunError
from .external import externalize
from .onnx_export import OPSET, export as to_onnx, validate
from .graph import build_int8
from .optimize import LEVEL as GRAPH_LEVEL
from .quantize import QuantOptions
from .source import resolve


def progress_line(msg: str) -> None:
    """One progress line on stderr."""
    print(f"[koner export] {msg}", file=sys.stderr, flush=True)


def export_model(source: str, out_dir: Path, *, revision: Optional[str] = None, quant: QuantOptions = QuantOptions(),
                 keep_fp32: bool = False, force: bool = False, parity: bool = True,
                 min_agreement: Optional[float] = None, corpus: Optional[Path] = None,
                 progress: Callable[[str], None] = progress_line, external: bool = True,
                 require_parity: bool = False, tie_margin: Optional[float] = None,
                 scheme: Optional[str] = None, check_set: bool = True) -> dict:
    """Export SOURCE to OUT_DIR and return the manifest; nothing is left behind on failure.

    `external`: the weights go to model.onnx.data beside the graph (page-aligned, mapped at load time).
    A parity miss still writes the folder, with the verdict in koner.json's `parity` and the report in
    parity.md; `require_parity` makes it raise ParityError and write nothing instead. A parity suite that fails
    unexpectedly still writes the folder, records that parity could not run, and raises ParityNotRunError (the
    failure as its __cause__); with `require_parity` the failure propagates and nothing is written. `scheme`
    names the label scheme (koner.scheme; default: read from the labels). `check_set`: record the model's answers
    on a few dozen parity-corpus sentences with PyTorch's margins (check-set.json), for `koner check` on other
    machines.
    """
    out_dir = Path(out_dir)
    if scheme is not None:
        Scheme.parse(scheme)
    if min_agreement is not None:
        from .accuracy import check_agreement

        check_agreement(min_agreement)
    if out_dir.exists() and not force:
        raise OutputExistsError(f"{out_dir}: already exists; pass --force to replace it")
    parent = out_dir.resolve().parent
    if not parent.is_dir():
        raise ExportError(f"{parent}: no such folder to hold {out_dir.name}; create it first")
    if not os.access(parent, os.W_OK):
        raise ExportError(f"{parent}: not writable; choose an OUT_DIR you can write to")
    if corpus is not None and (parity or min_agreement is not None):
        read_jsonl(corpus)  # a bad --corpus is an input error now, not a failure after the conversion
    t0 = time.time()
    failed = None
    progress(f"resolving {source}")
    folder, src_info = resolve(source, revision)
    progress(f"loading checkpoint from {folder}")
    ckpt = load(folder)
    src_info["files"] = ckpt.files
    try:
        tmp = atomic.temp_path(out_dir, folder=True)  # the mode the umask gives, like the final folder's
    except OSError as exc:
        raise ExportError(f"{parent}: cannot write there ({exc.strerror}); choose an OUT_DIR you can write to") from None
    try:
        fp32 = tmp / MODEL_FP32_FILE
        progress("exporting to ONNX")
        inputs = to_onnx(ckpt.model, ckpt.tokenizer, fp32)
        diff = validate(ckpt.model, ckpt.tokenizer, fp32)
        progress(f"ONNX logits match PyTorch (max |diff| {diff:.1e})")
        ckpt.tokenizer.backend_tokenizer.save(str(tmp / TOKENIZER_FILE))
        manifest = ManifestDraft(labels=ckpt.labels, max_length=ckpt.max_length, lowercase=ckpt.lowercase,
                                 vocab_size=len(ckpt.tokenizer), embedding_rows=int(ckpt.model.config.vocab_size),
                                 source=src_info, opset=OPSET, validation_max_abs_logit_diff=diff,
                                 keep_fp32=keep_fp32, versions=versions(), architecture=ckpt.architecture,
                                 inputs=inputs, unk_id=ckpt.tokenizer.unk_token_id,
                                 tokenizer_max_length=_tokenizer_max_length(ckpt.tokenizer),
                                 scheme=_scheme(ckpt.labels, scheme).value)
        progress("quantizing to int8")
        if min_agreement is not None:
            from .accuracy import fit_exclusions

            quant, report = fit_exclusions(ckpt, fp32, quant, min_agreement, corpus, progress)
            manifest.set_accuracy_aware(report)
        config = ckpt.model.config
        graph = build_int8(fp32, tmp / MODEL_FILE, quant, num_heads=getattr(config, "num_attention_heads", None),
                           hidden_size=getattr(config, "hidden_size", None))
        manifest.set_quantization(quant.to_json())
        manifest.set_graph_optimization(GRAPH_LEVEL, graph)
        progress(f"graph: {_describe(graph)}")
        if external:
            externalize(tmp / MODEL_FILE, MODEL_DATA_FILE)
            manifest.set_data_file(MODEL_DATA_FILE)
        manifest.write(tmp, _files(tmp, keep_fp32))
        if check_set:
            from .checkset import write_for

            progress("recording the check set (koner check)")
            write_for(ckpt, tmp)
        if parity:
            from .parity import run_or_report

            progress("running the parity suite")
            report, failed = run_or_report(ckpt, tmp, corpus=corpus, progress=progress,
                                           **({} if tie_margin is None else {"tie_margin": tie_margin}))
            if failed is not None and require_parity:  # else the model, whole, is kept: parity could not run
                raise failed
            manifest.set_parity({"passed": report["passed"], "failures": report["failures"], **report["summary"]})
            (tmp / PARITY_FILE).write_text(report["markdown"], "utf-8")
            print(report["markdown"], file=sys.stderr)
            if not report["passed"] and require_parity:
                raise ParityError("parity below thresholds, so nothing was written (--require-parity): " +
                                  "; ".join(report["failures"]))
        if not keep_fp32:
            fp32.unlink()
        manifest.write(tmp, _files(tmp, keep_fp32))
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=parent))
            os.replace(out_dir, old / "x")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum((out_dir / n).stat().st_size for n in (MODEL_FILE, MODEL_DATA_FILE) if (out_dir / n).exists())
    progress(f"wrote {out_dir} (model {size / 1e6:.2f} MB) in {time.time() - t0:.0f}s")
    if failed is not None:
        why = report["summary"]["could_not_run"]
        raise ParityNotRunError(out_dir, why["stage"], why["error"], manifest.to_dict()) from failed
    return manifest.to_dict()


def _tokenizer_max_length(tokenizer) -> Optional[int]:
    """transformers' `model_max_length` when the tokenizer sets a real one (unset, it is about 1e30)."""
    value = getattr(tokenizer, "model_max_length", None)
    return int(value) if isinstance(value, int) and 8 <= value < 1_000_000 else None


def _scheme(labels: list[str], name: Optional[str]) -> Scheme:
    """The label scheme to record: `name` checked against the labels, or the one read from them."""
    if not name:
        return detect(labels)
    scheme = Scheme.parse(name)
    try:
        check_scheme(labels, scheme)
    except ValueError as exc:
        raise ExportError(f"--scheme {exc}") from None
    return scheme


def _describe(graph: dict) -> str:
    """One progress line for what `build_int8` did."""
    done = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in graph.items() if isinstance(v, int) and v)
    return f"{graph['graph']}, {graph['activations']} activation scales" + (f" ({done})" if done else "")


def _files(folder: Path, keep_fp32: bool) -> list[str]:
    """The files of a model folder that the manifest hashes."""
    return ([MODEL_FILE] + ([MODEL_DATA_FILE] if (folder / MODEL_DATA_FILE).exists() else []) + [TOKENIZER_FILE] +
            ([MODEL_FP32_FILE] if keep_fp32 else []) +
            ([PARITY_FILE] if (folder / PARITY_FILE).exists() else []) +
            ([CHECK_FILE] if (folder / CHECK_FILE).exists() else []))
