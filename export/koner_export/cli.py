"""koner_export's verbs of the `koner` command: export, parity and bench (registered by `register`).

Importing this module is cheap (no torch); each verb imports the heavy libraries when it runs, and a
missing one is reported as the `[export]` extra's install hint.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Callable, Optional

from koner import exitcodes
from koner.cli.args import EXTRA_HINT, checked, positive_int
from koner.errors import KonerError
from koner.scheme import SCHEMES

HEAVY = ("torch", "transformers", "onnx", "optimum", "safetensors", "huggingface_hub", "matplotlib")


def register(sub) -> None:
    """Add `export`, `parity` and `bench` to the `koner` command's sub-parsers."""
    from .bench import add_arguments as bench_arguments

    e = sub.add_parser("export", help="checkpoint (hub id or folder) -> int8 ONNX model folder  [export extra]")
    e.add_argument("source", help="hub model id (owner/name) or local checkpoint folder")
    e.add_argument("-o", "--out", required=True, help="output folder (must not exist unless --force)")
    e.add_argument("--revision", help="hub revision (branch, tag or commit)")
    e.add_argument("--force", action="store_true", help="replace OUT if it exists")
    e.add_argument("--keep-fp32", action="store_true", help="also write model-fp32.onnx")
    e.add_argument("--per-channel", action="store_true")
    e.add_argument("--reduce-range", action="store_true")
    e.add_argument("--u8u8", action="store_true", help="uint8 weights (slower; exact on every CPU)")
    e.add_argument("--no-limit-pairs", action="store_true",
                   help="keep onnxruntime's int8 weights as they are: x86 CPUs without VNNI (AVX2, AVX-512 "
                        "without VNNI) may then saturate some sums and give labels a VNNI CPU does not")
    e.add_argument("--scheme", choices=SCHEMES,
                   help="the label scheme (default: read from the labels; IOB1 must be named: it looks like IOB2)")
    e.add_argument("--op-types", default="MatMul,Gather", help="comma-separated ops to quantize")
    e.add_argument("--exclude-node", action="append", default=[], help="node name to keep in float (repeatable)")
    e.add_argument("--int8-head", action="store_true",
                   help="also quantize the classifier (kept in float by default)")
    e.add_argument("--int8-projection", action="store_true",
                   help="also quantize ELECTRA's embedding projection (kept in float by default)")
    e.add_argument("--int8-embeddings", action="store_true",
                   help="int8 embedding tables with a scale per row (4.5 MB smaller than the default fp16, "
                        "less exact)")
    e.add_argument("--graph", choices=["fused", "onnxruntime"], default="fused",
                   help="fused (default): attention fused, LayerNorm and bias rewrites measured fastest; "
                        "onnxruntime: onnxruntime's own extended fusions only")
    e.add_argument("--per-token-scales", action="store_true",
                   help="int8 activations with one scale per token: a text's labels never depend on the texts "
                        "batched with it (padded batches allowed), at some speed cost")
    e.add_argument("--min-agreement", type=_agreement, help="keep the most sensitive nodes in float until int8 "
                                                            "token labels agree with PyTorch at least this often "
                                                            "(a share in (0, 1], e.g. 0.995)")
    e.add_argument("--corpus", help="parity / calibration corpus (JSONL with 'text'; default: the bundled one)")
    e.add_argument("--no-parity", action="store_true", help="skip the parity suite at the end")
    e.add_argument("--tie-margin", type=_margin, default=None,
                   help="a flip counts as decisive when PyTorch preferred its label by at least this many logits "
                        "(default 0.1)")
    e.add_argument("--require-parity", action="store_true",
                   help="write nothing when parity is below its thresholds (default: write the folder, exit 1)")
    e.set_defaults(run=_needs_extra(run_export))

    q = sub.add_parser("parity", help="compare a model folder with the PyTorch model  [export extra]")
    q.add_argument("source", help="hub model id or local checkpoint folder")
    q.add_argument("onnx_dir", help="folder written by `koner export`")
    q.add_argument("--corpus", help="JSONL with 'text' (and optional 'gold' spans); default: the bundled one")
    q.add_argument("--report", help="write the JSON report here (a .md summary is written beside it)")
    q.add_argument("--sample", type=positive_int, help="use at most this many texts (every category kept)")
    q.add_argument("--tie-margin", type=_margin, default=None,
                   help="a flip counts as decisive when PyTorch preferred its label by at least this many logits "
                        "(default 0.1)")
    q.add_argument("--decode", choices=["argmax", "viterbi"], default="argmax",
                   help="viterbi: also compare Viterbi entities with PyTorch's logits decoded the same way")
    q.set_defaults(run=_needs_extra(run_parity_cli))

    b = sub.add_parser("bench", help="benchmark koner against PyTorch and optimum  [export extra]",
                       description="Latency, throughput, cold start, memory and size of five systems, side by side.")
    bench_arguments(b)
    b.set_defaults(run=_needs_extra(run_bench))


_margin = checked(float, lambda x: x >= 0, "a logit margin of 0 or more (e.g. 0.1)")
_agreement = checked(float, lambda x: 0 < x <= 1, "a share in (0, 1] (e.g. 0.995)")


def _needs_extra(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`fn`, reporting a missing heavy library as the install hint instead of a traceback."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ImportError as exc:
            if exc.name and exc.name.split(".")[0] in HEAVY:
                print(f"koner: {EXTRA_HINT} (missing: {exc.name})", file=sys.stderr)
                return exitcodes.USAGE
            raise

    return run


def run_export(args: argparse.Namespace) -> int:
    """`koner export SOURCE -o OUT_DIR`."""
    from .export import export_model
    from .quantize import QuantOptions

    quant = QuantOptions(per_channel=args.per_channel, reduce_range=args.reduce_range, u8u8=args.u8u8,
                         op_types=[o for o in args.op_types.split(",") if o], exclude=list(args.exclude_node),
                         float_head=not args.int8_head, float_projection=not args.int8_projection,
                         embeddings="int8" if args.int8_embeddings else "fp16", graph=args.graph,
                         activations="per-token" if args.per_token_scales else "per-tensor",
                         limit_pairs=not args.no_limit_pairs)
    from .errors import ParityError, ParityNotRunError

    from .export import progress_line

    stage = ["starting"]

    def progress(msg: str) -> None:
        if not msg.startswith("warning:"):  # a warning is said on the way; the stage is where the export is
            stage[0] = msg
        progress_line(msg)

    try:
        manifest = export_model(args.source, Path(args.out), revision=args.revision, quant=quant,
                                keep_fp32=args.keep_fp32, force=args.force, parity=not args.no_parity,
                                min_agreement=args.min_agreement, corpus=Path(args.corpus) if args.corpus else None,
                                require_parity=args.require_parity, tie_margin=args.tie_margin, scheme=args.scheme,
                                progress=progress)
    except ParityError as exc:
        print(f"koner: {exc}", file=sys.stderr)
        return exitcodes.FAILED
    except ParityNotRunError as exc:  # the model is written; the suite's traceback goes to a log file
        log = _log(exc.__cause__ or exc, Path(args.out), "export")
        print(f"koner: {exc}; details in {log}", file=sys.stderr)
        return exitcodes.FAILED
    except KonerError:
        raise
    except Exception as exc:  # a failure koner did not foresee: one line here, the traceback in a log file
        return _unexpected(exc, stage[0], Path(args.out))
    verdict = manifest.get("parity")
    if verdict and not verdict["passed"]:
        unchecked = any("could_not_run" in v for v in verdict.get("strategies", {}).values())
        print(f"koner: {args.out} written, but parity is below its thresholds" +
              (" or could not be checked" if unchecked else "") + ": " + "; ".join(verdict["failures"]) +
              f" (report: {Path(args.out) / 'parity.md'}; the verdict is in koner.json)", file=sys.stderr)
        return exitcodes.FAILED
    return exitcodes.OK


def _log(exc: BaseException, beside: Path, verb: str) -> Optional[Path]:
    """Write `exc`'s traceback to BESIDE.VERB-error-DATE.log beside `beside` (else in the temp folder); its path."""
    import tempfile
    import time
    import traceback

    text = "".join(traceback.format_exception(exc))
    name = f"{beside.name or 'model'}.{verb}-error-{time.strftime('%Y%m%d-%H%M%S')}.log"
    for folder in (beside.resolve().parent, Path(tempfile.gettempdir())):
        try:
            (folder / name).write_text(text, "utf-8")
            return folder / name
        except OSError:
            continue
    return None


def _unexpected(exc: Exception, stage: str, out: Path) -> int:
    """Report an unforeseen export failure in one line and write its traceback to a log file."""
    from .errors import one_line

    log = _log(exc, out, "export")
    print(f"koner: export failed at \"{stage}\" ({one_line(exc)}); nothing was written to {out}; "
          f"details in {log}", file=sys.stderr)
    return exitcodes.FAILED


def run_parity_cli(args: argparse.Namespace) -> int:
    """`koner parity SOURCE ONNX_DIR`: exit 1 when a threshold fails."""
    from koner.manifest import read_manifest

    read_manifest(Path(args.onnx_dir))  # a folder that is no koner model fails now, before PyTorch loads
    from .checkpoint import load
    from .corpus import read_jsonl
    from .parity import run_or_report
    from .source import resolve

    corpus = Path(args.corpus) if args.corpus else None
    if corpus is not None:
        read_jsonl(corpus)  # a bad corpus fails now, before PyTorch loads
    folder, _ = resolve(args.source)
    ckpt = load(folder)
    report, failed = run_or_report(ckpt, Path(args.onnx_dir), corpus=corpus, sample=args.sample,
                                   progress=lambda m: print(f"[koner parity] {m}", file=sys.stderr), decode=args.decode,
                                   **({} if args.tie_margin is None else {"tie_margin": args.tie_margin}))
    if failed is not None:  # a failure koner did not foresee: one line here, the traceback in a log file
        if isinstance(failed, KonerError):
            raise failed
        log = _log(failed, Path(args.onnx_dir), "parity")
        print(f"koner: {report['failures'][0]}; details in {log}", file=sys.stderr)
        return exitcodes.FAILED
    print(report["markdown"])
    if args.report:
        out = Path(args.report)
        out.write_text(json.dumps({k: v for k, v in report.items() if k != "markdown"}, indent=1,
                                  ensure_ascii=False) + "\n", "utf-8")
        out.with_suffix(".md").write_text(report["markdown"], "utf-8")
    return exitcodes.OK if report["passed"] else exitcodes.FAILED


def run_bench(args: argparse.Namespace) -> int:
    """`koner bench [options]`: the side-by-side benchmark."""
    from .bench import run

    return run(args)
