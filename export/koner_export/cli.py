"""The heavy verbs of the `koner` command: export, parity and bench."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .export import export_model
from .quantize import QuantOptions


def run_export(args) -> int:
    """`koner export SOURCE -o OUT_DIR`."""
    quant = QuantOptions(per_channel=args.per_channel, reduce_range=args.reduce_range, u8u8=args.u8u8,
                         op_types=[o for o in args.op_types.split(",") if o], exclude=list(args.exclude_node),
                         float_head=not args.int8_head, float_projection=not args.int8_projection,
                         embeddings="int8" if args.int8_embeddings else "fp16")
    export_model(args.source, Path(args.out), revision=args.revision, quant=quant, keep_fp32=args.keep_fp32,
                 force=args.force, parity=not args.no_parity, min_agreement=args.min_agreement,
                 corpus=Path(args.corpus) if args.corpus else None)
    return 0


def run_parity_cli(args) -> int:
    """`koner parity SOURCE ONNX_DIR`: exit 1 when a threshold fails."""
    from .checkpoint import load
    from .parity import run_parity
    from .source import resolve

    folder, _ = resolve(args.source)
    report = run_parity(load(folder), Path(args.onnx_dir), corpus=Path(args.corpus) if args.corpus else None,
                        sample=args.sample, progress=lambda m: print(f"[koner parity] {m}", file=sys.stderr))
    print(report["markdown"])
    if args.report:
        out = Path(args.report)
        out.write_text(json.dumps({k: v for k, v in report.items() if k != "markdown"}, indent=1,
                                  ensure_ascii=False) + "\n", "utf-8")
        out.with_suffix(".md").write_text(report["markdown"], "utf-8")
    return 0 if report["passed"] else 1


def run_bench(args) -> int:
    """`koner bench ...`: runs benchmarks/run.py from a source checkout."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
    if not script.is_file():
        print("koner: the benchmark script ships with the source tree (benchmarks/run.py); run it from a checkout",
              file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(script), *args.bench_args])
