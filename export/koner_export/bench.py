"""koner benchmarks: latency, throughput, cold start, memory and size, side by side in one run.

Systems, each measured in its own subprocess, one after another, at the same CPU budget N (--threads):
  a  transformers pipeline("ner") on the PyTorch model (torch.set_num_threads(N))
  b  optimum ORTModelForTokenClassification on the int8 file, inside the transformers pipeline (N intra-op)
  c  koner on the fp32 ONNX (N worker threads, 1 intra-op thread each)
  d  koner on the int8 ONNX (N worker threads, 1 intra-op thread each)
  e  the floor: tokenize + session.run on the int8 file, nothing else (N threads calling it, 1 intra-op)
A single call (the latency rows) uses what the system gives one call: N threads for a and b, 1 for c-e.

Usage (`koner bench` takes the same options; `python benchmarks/run.py` from a checkout too):
  koner bench                 # full run, CPU budgets 1 and 2; writes benchmarks/results/ in a checkout
  koner bench --quick         # every system and workload, briefly (no figures kept)
  koner bench --compare       # also print this run's ratios against the last committed run
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from koner.manifest import MODEL_DATA_FILE, MODEL_FILE, MODEL_FP32_FILE, TOKENIZER_FILE
from koner.ner import DEFAULT_MODEL
from koner.system import peak_rss_mb

from .corpus import CALIBRATION, PARITY_CORPUS, texts as corpus_texts
from .environment import machine, versions

# in a source checkout: the stand-in, the bundled model and the committed results
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
STANDIN = ROOT / "standin" / "model"
BENCH_LIBRARIES = ("onnxruntime", "tokenizers", "numpy", "torch", "transformers", "optimum")
SYSTEMS = {"a": "transformers (PyTorch)", "b": "optimum int8", "c": "koner fp32", "d": "koner int8",
           "e": "floor (tokenize + session.run, int8)"}
WORKLOADS = ["short", "sentence", "paragraph", "document"]


# ------------------------------------------------------------------ texts

def corpus() -> list[str]:
    """Real Korean sentences: the parity corpus and calibration sentences (about 1,000)."""
    skip = ("long", "paragraph", "unicode")
    return corpus_texts(PARITY_CORPUS, skip_categories=skip) + corpus_texts(CALIBRATION, skip_categories=skip)


def workloads() -> dict[str, str]:
    """One text per workload: ~15 tokens, ~50 tokens, ~200 tokens, > 512 tokens."""
    texts = corpus()
    sentence = "2023년 3월 15일 오후 3시에 서울 서초구 삼성전자 본사에서 이재용 회장이 기자회견을 열고 " \
               "반도체 투자 계획을 발표했으며, 이 자리에는 100여 명의 기자가 참석했다."
    paragraph = " ".join(texts[:6])
    document = " ".join(texts[:60])
    return {"short": "서울역으로 안내해줘.", "sentence": sentence, "paragraph": paragraph, "document": document}


# ------------------------------------------------------------------ workers (run in subprocesses)

def make_system(system: str, args):
    """A callable text -> result and a batch callable, for one system."""
    if system in ("a", "b"):
        from transformers import AutoTokenizer, pipeline

        tok = AutoTokenizer.from_pretrained(args.source)
        if system == "a":
            import torch

            torch.set_num_threads(args.threads)
            from transformers import AutoModelForTokenClassification

            model = AutoModelForTokenClassification.from_pretrained(args.source)
        else:
            import onnxruntime as ort
            from optimum.onnxruntime import ORTModelForTokenClassification

            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            so.inter_op_num_threads = 1
            model = ORTModelForTokenClassification.from_pretrained(args.optimum_dir, file_name="model.onnx",
                                                                   session_options=so)
        pipe = pipeline("ner", model=model, tokenizer=tok, aggregation_strategy="simple", device=-1)
        return pipe, lambda texts, bs: pipe(texts, batch_size=bs)
    if system in ("c", "d"):
        from koner import NER

        model_file = MODEL_FP32_FILE if system == "c" else None
        # koner spends a CPU budget of N as N worker threads, each call with 1 intra-op thread
        ner = NER.load(args.fp32_dir if system == "c" else args.model, threads=1, workers=args.threads,
                       model_file=model_file)
        return ner, lambda texts, bs: ner.batch(texts, batch_size=bs)
    if system == "e":
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from koner.session import session_options

        so = session_options(1, "all", mem_pattern=True)  # N CPUs: N threads calling one session, as koner
        sess = ort.InferenceSession(str(Path(args.model) / MODEL_FILE), so, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(Path(args.model) / TOKENIZER_FILE))
        tok.no_truncation()

        def one(text):
            ids = np.asarray(tok.encode(text).ids[:512], dtype=np.int64)[None, :]
            return sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                   "token_type_ids": np.zeros_like(ids)})[0]

        if args.threads == 1:
            return one, lambda texts, bs: [one(t) for t in texts]
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(args.threads)
        return one, lambda texts, bs: list(pool.map(one, texts))
    raise ValueError(system)


def worker(args) -> None:
    """Measure one system; print one JSON object."""
    t0 = time.perf_counter()
    single, batch = make_system(args.worker, args)
    load_s = time.perf_counter() - t0
    out = {"system": args.worker, "threads": args.threads, "load_s": load_s, "latency": {}, "throughput": {}}
    if args.cold:
        single("서울역으로 안내해줘.")
        out["first_result_s"] = time.perf_counter() - t0
        print(json.dumps(out))
        return
    for name, text in workloads().items():
        reps = args.reps if name != "document" else max(3, args.reps // 10)
        for _ in range(max(2, reps // 10)):
            single(text)
        times = []
        for _ in range(reps):
            s = time.perf_counter()
            single(text)
            times.append(time.perf_counter() - s)
        times.sort()
        q = lambda p: times[min(len(times) - 1, int(p * len(times)))]  # noqa: E731
        out["latency"][name] = {"p50_ms": 1000 * statistics.median(times), "p95_ms": 1000 * q(0.95),
                                "p99_ms": 1000 * q(0.99), "reps": reps}
    texts = corpus()[: args.corpus_size]
    for bs in (1, 8, 32):
        s = time.perf_counter()
        batch(texts, bs)
        el = time.perf_counter() - s
        out["throughput"][str(bs)] = {"texts_per_s": len(texts) / el, "texts": len(texts)}
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


# ------------------------------------------------------------------ parent

def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def prepare(args, tmp: Path) -> None:
    """The fp32 export and optimum's folder (model.onnx + config.json + tokenizer files)."""
    if args.fp32_dir is None:
        args.fp32_dir = str(tmp / "fp32")
        from .export import export_model

        export_model(args.source, Path(args.fp32_dir), keep_fp32=True, parity=False, progress=lambda m: None)
    opt = tmp / "optimum"
    opt.mkdir()
    shutil.copy(Path(args.model) / MODEL_FILE, opt / "model.onnx")
    if (Path(args.model) / MODEL_DATA_FILE).is_file():  # the graph's weights, found beside it by name
        shutil.copy(Path(args.model) / MODEL_DATA_FILE, opt / MODEL_DATA_FILE)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (Path(args.source) / name).is_file():
            shutil.copy(Path(args.source) / name, opt / name)
    args.optimum_dir = str(opt)


def run_child(args, system: str, threads: int, cold: bool) -> dict:
    cmd = [sys.executable, "-m", "koner_export.bench", "--worker", system, "--threads", str(threads), "--source", args.source,
           "--model", args.model, "--fp32-dir", args.fp32_dir, "--optimum-dir", args.optimum_dir,
           "--reps", str(args.reps), "--corpus-size", str(args.corpus_size)] + (["--cold"] if cold else [])
    import koner

    path = os.pathsep.join([str(Path(koner.__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1]),
                            os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
           "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}
    s = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - s
    if res.returncode != 0:
        raise SystemExit(f"benchmark worker {system} failed:\n{res.stderr[-2000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if cold:
        out["cold_start_s"] = wall
    return out


def table(result: dict) -> str:
    """Markdown tables with every figure also as a ratio to (a) and to (e)."""
    m = result.get("machine", {})
    lines = [f"Machine: {m.get('cpu', 'unknown CPU')}, {m.get('cpus')} CPUs, int8 path "
             f"{m.get('int8_path', 'unknown')}", ""]
    for threads, runs in result["runs"].items():
        lines += [f"### CPU budget {threads}", "",
                  "| figure | " + " | ".join(f"{k}: {SYSTEMS[k]}" for k in runs) + " |",
                  "|---|" + "---|" * len(runs)]

        def row(label, get, lower_better=True):
            vals = {k: get(v) for k, v in runs.items()}
            cells = []
            for k, v in vals.items():
                if v is None:
                    cells.append("–")
                    continue
                ra = v / vals["a"] if vals.get("a") else None
                re = v / vals["e"] if vals.get("e") else None
                cells.append(f"{v:.3g} ({ra:.2f}× a, {re:.2f}× e)" if ra and re else f"{v:.3g}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")

        for w in WORKLOADS:
            row(f"{w} p50 ms", lambda r, w=w: r["latency"][w]["p50_ms"])
            row(f"{w} p99 ms", lambda r, w=w: r["latency"][w]["p99_ms"])
        for bs in ("1", "8", "32"):
            row(f"throughput bs={bs} texts/s", lambda r, bs=bs: r["throughput"][bs]["texts_per_s"])
        row("cold start s", lambda r: r.get("cold_start_s"))
        row("peak RSS MB", lambda r: r["peak_rss_mb"])
        lines.append("")
    sizes = result["sizes_mb"]
    lines.append("Model files: " + ", ".join(f"{k} {v:.2f} MB" for k, v in sizes.items()))
    return "\n".join(lines) + "\n"


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"][min(result["runs"])]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.16
    for i, (k, r) in enumerate(runs.items()):
        ax.bar([x + i * width for x in range(len(WORKLOADS))], [r["latency"][w]["p50_ms"] for w in WORKLOADS],
               width, label=f"{k}: {SYSTEMS[k]}")
    ax.set_xticks([x + 2 * width for x in range(len(WORKLOADS))], WORKLOADS)
    ax.set_yscale("log")
    ax.set_ylabel("p50 latency, ms (log)")
    ax.set_title(f"koner: batch-1 latency, {min(result['runs'])} thread(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def compare(result: dict) -> None:
    listed = subprocess.run(["git", "ls-files", "benchmarks/results/*.json"], cwd=ROOT, capture_output=True,
                            text=True).stdout.split()
    # side-by-side runs only (DATE-TIME.json); the other scripts' results have their own names
    committed = sorted(p for p in listed if re.fullmatch(r"\d{8}-\d{6}\.json", Path(p).name))
    if not committed:
        print("no committed run to compare with")
        return
    last = json.loads((ROOT / committed[-1]).read_text())
    print(f"this run vs {committed[-1]} (ratio; < 1 is faster):")
    for threads, runs in result["runs"].items():
        for k, r in runs.items():
            old = last["runs"].get(threads, {}).get(k)
            if old:
                ratios = ", ".join(f"{w} {r['latency'][w]['p50_ms'] / old['latency'][w]['p50_ms']:.2f}"
                                   for w in WORKLOADS)
                print(f"  {threads}t {k}: p50 {ratios}")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by `koner bench` and `python -m koner_export.bench`)."""
    ap.add_argument("--source", default=str(STANDIN) if STANDIN.is_dir() else None,
                    help="PyTorch checkpoint folder (default: the stand-in, in a source checkout)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="koner int8 model folder (default: the bundled model)")
    ap.add_argument("--fp32-dir", help="koner folder with model-fp32.onnx (default: exported now)")
    ap.add_argument("--optimum-dir")
    ap.add_argument("--threads", type=int, nargs="*", default=None, help="CPU budgets (default: 1 and 2)")
    ap.add_argument("--systems", default="abcde")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--corpus-size", type=int, default=1000)
    ap.add_argument("--cold-reps", type=int, default=5, help="fresh processes per cold-start figure (median)")
    ap.add_argument("--quick", action="store_true", help="every system and workload, briefly; keeps nothing")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS if RESULTS.is_dir() else Path("koner-bench-results"),
                    help="folder for the results (default: benchmarks/results in a checkout)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or, with --worker, one system's measurement); returns the exit code."""
    if args.worker:
        args.threads = args.threads[0] if isinstance(args.threads, list) else args.threads
        worker(args)
        return 0
    if not args.source:
        print("koner: --source is needed: the PyTorch checkpoint folder the int8 model was exported from",
              file=sys.stderr)
        return 2
    threads_list = args.threads or ([1] if args.quick else [1, 2])
    if args.quick:
        args.reps, args.corpus_size, args.cold_reps = 5, 40, 1
    with tempfile.TemporaryDirectory() as tmp:
        print("[bench] preparing the fp32 export and optimum's folder", file=sys.stderr, flush=True)
        prepare(args, Path(tmp))
        result = {"machine": machine(), "versions": versions(BENCH_LIBRARIES), "commit": git_commit(), "quick": args.quick,
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "runs": {},
                  "sizes_mb": {"pytorch model.safetensors": (Path(args.source) / "model.safetensors").stat().st_size / 1e6
                               if (Path(args.source) / "model.safetensors").exists() else 0,
                               "fp32 model-fp32.onnx": (Path(args.fp32_dir) / MODEL_FP32_FILE).stat().st_size / 1e6,
                               "int8 model.onnx (+ weights file)": sum(
                                   (Path(args.model) / n).stat().st_size for n in (MODEL_FILE, MODEL_DATA_FILE)
                                   if (Path(args.model) / n).exists()) / 1e6}}
        steps = [(t, s) for t in threads_list for s in args.systems]
        for n, (t, s) in enumerate(steps, 1):
            print(f"[bench] {n}/{len(steps)} {SYSTEMS[s]}, {t} thread(s)", file=sys.stderr, flush=True)
            r = run_child(args, s, t, cold=False)
            colds = sorted(run_child(args, s, t, cold=True)["cold_start_s"] for _ in range(args.cold_reps))
            r["cold_start_s"] = statistics.median(colds)
            r["cold_start_runs_s"] = colds
            result["runs"].setdefault(str(t), {})[s] = r
    md = table(result)
    print(md)
    if not args.quick or args.out != RESULTS:  # written first: a comparison never costs the run its results
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (args.out / f"{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / f"{stamp}.md").write_text(md)
        chart(result, args.out / f"{stamp}.png")
        print(f"[bench] wrote {args.out}/{stamp}.json, .md, .png", file=sys.stderr)
    if args.compare:
        compare(result)
    return 0


def main(argv: "list[str] | None" = None) -> int:
    """`python -m koner_export.bench [options]`."""
    ap = argparse.ArgumentParser(prog="koner bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
