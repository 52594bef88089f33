"""The `koner` command: `ner` runs the lean runtime; `export`, `parity` and `bench` need koner[export]."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

from .aggregate import STRATEGIES
from .errors import KonerError

EXTRA_HINT = "this command needs the export extra: pip install 'koner[export]'"


def _heavy(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in ("torch", "transformers", "onnx", "optimum", "koner_export",
                                                    "safetensors", "huggingface_hub", "matplotlib"):
            raise SystemExit(f"koner: {EXTRA_HINT} (missing: {exc.name})") from None
        raise


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the `koner` command."""
    ap = argparse.ArgumentParser(prog="koner", description="Korean named-entity recognition on onnxruntime.")
    sub = ap.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("ner", help="print the entities of a text, of lines on stdin, or of a JSONL stream")
    p.add_argument("text", nargs="?", help="the text; without it, lines are read from stdin")
    p.add_argument("--model", help="model folder (default: the bundled stand-in)")
    p.add_argument("--aggregation", default="simple", choices=STRATEGIES)
    p.add_argument("--jsonl", action="store_true", help='stdin holds {"id": ..., "text": ...} lines')
    p.add_argument("--threads", type=int)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--format", choices=["auto", "table", "jsonl"], default="auto",
                   help="output: a table on a terminal, JSONL otherwise (auto)")

    e = sub.add_parser("export", help="checkpoint (hub id or folder) -> int8 ONNX model folder  [export extra]")
    e.add_argument("source", help="hub model id (owner/name) or local checkpoint folder")
    e.add_argument("-o", "--out", required=True, help="output folder (must not exist unless --force)")
    e.add_argument("--revision", help="hub revision (branch, tag or commit)")
    e.add_argument("--force", action="store_true", help="replace OUT if it exists")
    e.add_argument("--keep-fp32", action="store_true", help="also write model-fp32.onnx")
    e.add_argument("--per-channel", action="store_true")
    e.add_argument("--reduce-range", action="store_true")
    e.add_argument("--u8u8", action="store_true", help="uint8 weights (CPUs without VNNI)")
    e.add_argument("--op-types", default="MatMul,Gather", help="comma-separated ops to quantize")
    e.add_argument("--exclude-node", action="append", default=[], help="node name to keep in float (repeatable)")
    e.add_argument("--int8-head", action="store_true",
                   help="also quantize the classifier (kept in float by default)")
    e.add_argument("--int8-projection", action="store_true",
                   help="also quantize ELECTRA's embedding projection (kept in float by default)")
    e.add_argument("--int8-embeddings", action="store_true",
                   help="int8 embedding tables with a scale per row (4.5 MB smaller than the default fp16, "
                        "less exact)")
    e.add_argument("--min-agreement", type=float, help="keep the most sensitive nodes in float until int8 token "
                                                       "labels agree with PyTorch at least this often (e.g. 0.995)")
    e.add_argument("--corpus", help="parity / calibration corpus (JSONL with 'text'; default: the bundled one)")
    e.add_argument("--no-parity", action="store_true", help="skip the parity suite at the end")

    q = sub.add_parser("parity", help="compare a model folder with the PyTorch model  [export extra]")
    q.add_argument("source", help="hub model id or local checkpoint folder")
    q.add_argument("onnx_dir", help="folder written by `koner export`")
    q.add_argument("--corpus", help="JSONL with 'text' (and optional 'gold' spans); default: the bundled one")
    q.add_argument("--report", help="write the JSON report here (a .md summary is written beside it)")
    q.add_argument("--sample", type=int, help="use at most this many sentences (every category kept)")

    b = sub.add_parser("bench", help="benchmark koner against PyTorch and optimum  [export extra]")
    b.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for benchmarks/run.py")

    args = ap.parse_args(argv)
    try:
        if args.verb == "ner":
            from .cli_ner import run_ner

            return run_ner(args)
        if args.verb == "export":
            return _heavy("koner_export.cli").run_export(args)
        if args.verb == "parity":
            return _heavy("koner_export.cli").run_parity_cli(args)
        if args.verb == "bench":
            return _heavy("koner_export.cli").run_bench(args)
    except KonerError as exc:
        print(f"koner: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
