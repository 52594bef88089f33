"""koner benchmarks: latency, throughput, cold start, memory and size, side by side in one run.

Systems, each measured in its own subprocess, one after another, at the same CPU budget N (--threads):
  a  transformers pipeline("ner") on the PyTorch model (torch.set_num_threads(N))
  b  optimum's own int8 export (`optimum-cli export onnx` + ORTQuantizer, avx512_vnni dynamic config) in
     ORTModelForTokenClassification inside the transformers pipeline (N intra-op threads): what a user
     would otherwise pick
  f  optimum's int8 file on bare onnxruntime: tokenize + session.run (N threads calling it, 1 intra-op)
  c  koner on the fp32 ONNX (N worker threads, 1 intra-op thread each)
  d  koner on the int8 ONNX (N worker threads, 1 intra-op thread each)
  p  koner int8 on an earlier model folder (--baseline-model, e.g. the previous graph), as d
  e  koner's int8 graph on bare onnxruntime: tokenize + session.run, nothing else (koner's overhead reference)
A single call (the latency rows) uses what the system gives one call: N threads for a and b, 1 for the rest.
The pipelines (a, b) run with stride=128, so the document workload is the whole document for every system.

Usage (`koner bench` takes the same options; `python benchmarks/run.py` from a checkout too):
  koner bench                 # full run, CPU budgets 1 and 2; writes ./koner-bench-results (or --out DIR)
  python benchmarks/run.py    # the same from a checkout, writing benchmarks/results/ (the committed runs)
  koner bench --quick         # every system and workload, briefly (figures kept only with --out)
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

# in a source checkout: the stand-in checkpoint and the committed results (--compare)
ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "standin" / "model"
OUT = Path("koner-bench-results")  # the results folder without --out, in the working directory
BENCH_LIBRARIES = ("onnxruntime", "tokenizers", "numpy", "torch", "transformers", "optimum")
SYSTEMS = {"a": "transformers (PyTorch)", "b": "optimum int8 pipeline", "f": "optimum int8, bare onnxruntime",
           "c": "koner fp32", "d": "koner int8", "p": "koner int8, baseline model",
           "e": "koner graph, bare onnxruntime"}
STRIDE = 128  # the pipelines' own windowing of texts over 512 tokens (a and b)
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
            model = ORTModelForTokenClassification.from_pretrained(args.optimum_dir, file_name=OPTIMUM_FILE,
                                                                   session_options=so)
        pipe = pipeline("ner", model=model, tokenizer=tok, aggregation_strategy="simple", device=-1, stride=STRIDE)
        return pipe, lambda texts, bs: pipe(texts, batch_size=bs)
    if system in ("c", "d", "p"):
        from koner import NER

        model_file = MODEL_FP32_FILE if system == "c" else None
        folder = {"c": args.fp32_dir, "d": args.model, "p": args.baseline_model}[system]
        # koner spends a CPU budget of N as N worker threads, each call with 1 intra-op thread
        ner = NER.load(folder, threads=1, workers=args.threads, model_file=model_file)
        return ner, lambda texts, bs: ner.batch(texts, batch_size=bs)
    if system in ("e", "f"):
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from koner.manifest import read_manifest
        from koner.session import session_options

        from .profile import feed_for

        if system == "e":  # koner's graph, loaded at the level koner loads it
            path, tok_path = Path(args.model) / MODEL_FILE, Path(args.model) / TOKENIZER_FILE
            level = "basic" if read_manifest(Path(args.model)).prefused else "all"
        else:  # optimum's file at onnxruntime's default level
            path, tok_path, level = Path(args.optimum_dir) / OPTIMUM_FILE, Path(args.optimum_dir) / "tokenizer.json", "all"
        so = session_options(1, level, mem_pattern=True)  # N CPUs: N threads calling one session, as koner
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        tok = Tokenizer.from_file(str(tok_path))
        tok.no_truncation()

        def one(text):
            ids = np.asarray(tok.encode(text).ids[:512], dtype=np.int64)[None, :]
            return sess.run(None, feed_for(names, ids))[0]

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


OPTIMUM_FILE = "model_quantized.onnx"


def prepare(args, tmp: Path) -> None:
    """The fp32 export and optimum's own int8 export, made the way optimum's documentation shows."""
    if args.fp32_dir is None:
        args.fp32_dir = str(tmp / "fp32")
        from .export import export_model

        export_model(args.source, Path(args.fp32_dir), keep_fp32=True, parity=False, progress=lambda m: None)
    if args.optimum_dir is None and set(args.systems) & {"b", "f"}:
        args.optimum_dir = str(optimum_int8(args.source, tmp / "optimum"))
    elif args.optimum_dir is not None and not (Path(args.optimum_dir) / OPTIMUM_FILE).is_file():
        raise SystemExit(f"koner: {args.optimum_dir} has no {OPTIMUM_FILE}; give a folder written by "
                         "optimum's ORTQuantizer, or leave --optimum-dir out to make one now")


def optimum_int8(source: str, out: Path) -> Path:
    """`optimum-cli export onnx` of `source`, then ORTQuantizer with the avx512_vnni dynamic config into `out`."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    fp32 = out.with_name(out.name + "-fp32")
    cli = Path(sys.executable).with_name("optimum-cli")
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "optimum.commands.optimum_cli"]
    res = subprocess.run(cmd + ["export", "onnx", "--model", str(source), "--task", "token-classification", str(fp32)],
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if res.returncode != 0:
        raise SystemExit(f"optimum-cli export onnx failed:\n{res.stderr[-2000:]}")
    quantizer = ORTQuantizer.from_pretrained(fp32)
    quantizer.quantize(save_dir=out, quantization_config=AutoQuantizationConfig.avx512_vnni(is_static=False,
                                                                                           per_channel=False))
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (fp32 / name).is_file() and not (out / name).exists():
            shutil.copy(fp32 / name, out / name)
    return out


def run_child(args, system: str, threads: int, cold: bool) -> dict:
    cmd = [sys.executable, "-m", "koner_export.bench", "--worker", system, "--threads", str(threads), "--source", args.source,
           "--model", args.model, "--fp32-dir", args.fp32_dir, *(["--optimum-dir", args.optimum_dir] if args.optimum_dir else []),
           "--reps", str(args.reps), "--corpus-size", str(args.corpus_size)] + (["--cold"] if cold else []) + \
          (["--baseline-model", args.baseline_model] if args.baseline_model else [])
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
    lines += goals(result)
    sizes = result["sizes_mb"]
    lines.append("Model files: " + ", ".join(f"{k} {v:.2f} MB" for k, v in sizes.items()))
    return "\n".join(lines) + "\n"


def goals(result: dict) -> list[str]:
    """koner int8 (d) against the baseline model (p), optimum's pipeline (b) and transformers (a), per budget."""
    lines = []
    for threads, runs in result["runs"].items():
        d = runs.get("d")
        if not d:
            continue
        parts = []
        sent = d["latency"]["sentence"]["p50_ms"]
        for k, label in (("p", "baseline model"), ("b", "optimum int8 pipeline"), ("f", "optimum int8 bare")):
            if k in runs:
                parts.append(f"sentence p50 {sent / runs[k]['latency']['sentence']['p50_ms']:.2f}× {label}")
        if "a" in runs:
            tput = d["throughput"]["32"]["texts_per_s"] / runs["a"]["throughput"]["32"]["texts_per_s"]
            parts.append(f"throughput (batch 32) {tput:.2f}× transformers")
        if "e" in runs:
            parts.append(f"sentence p50 {sent / runs['e']['latency']['sentence']['p50_ms']:.2f}× its bare graph")
        lines.append(f"CPU budget {threads}, koner int8: " + "; ".join(parts))
    return lines + [""] if lines else []


def run_profile(args, threads_list: list[int]) -> int:
    """`koner bench --profile`: per-op ms per call for each workload and budget; writes profile-*.json/.md."""
    import numpy as np
    from tokenizers import Tokenizer

    from .profile import op_profile

    models = {"model": Path(args.model)} | ({"baseline": Path(args.baseline_model)} if args.baseline_model else {})
    result = {"machine": machine(), "versions": versions(BENCH_LIBRARIES), "commit": git_commit(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "models": {k: str(v) for k, v in models.items()}, "runs": {}}
    lines = [f"Machine: {result['machine'].get('cpu', 'unknown CPU')}, int8 path {result['machine']['int8_path']}", ""]
    calls = 3 if args.quick else 30
    for key, folder in models.items():
        from koner.manifest import read_manifest

        level = "basic" if read_manifest(folder).prefused else "all"
        tok = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        tok.no_truncation()
        texts = workloads()
        work = {k: tok.encode(v).ids for k, v in texts.items() if k != "document"}
        doc = tok.encode(texts["document"]).ids
        work["window512"] = doc[:511] + doc[-1:]
        for threads in threads_list:
            for w, ids in work.items():
                prof = op_profile(folder / MODEL_FILE, np.asarray([ids], np.int64), threads=threads,
                                  calls=max(3, calls // (10 if w == "window512" else 1)), level=level)
                result["runs"].setdefault(key, {}).setdefault(str(threads), {})[w] = prof
                top = ", ".join(f"{op} {v['ms']:.3f} ms ({v['nodes']})" for op, v in list(prof["ops"].items())[:6])
                lines.append(f"- {key} ({folder.name}), {threads} CPU, {w} ({prof['tokens']} tokens): "
                             f"{prof['ms_per_call']:.3f} ms kernel time, {prof['nodes']} nodes; {top}")
                print(lines[-1], file=sys.stderr, flush=True)
    md = "\n".join(lines) + "\n"
    print(md)
    if not args.quick:
        out = results_folder(args)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"profile-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        path.with_suffix(".md").write_text(md)
        print(f"[bench] wrote {path} and .md", file=sys.stderr)
    return 0


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"][min(result["runs"])]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(runs)
    for i, (k, r) in enumerate(runs.items()):
        ax.bar([x + i * width for x in range(len(WORKLOADS))], [r["latency"][w]["p50_ms"] for w in WORKLOADS],
               width, label=f"{k}: {SYSTEMS[k]}")
    ax.set_xticks([x + (len(runs) - 1) * width / 2 for x in range(len(WORKLOADS))], WORKLOADS)
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
    ap.add_argument("--optimum-dir", help=f"a folder with optimum's int8 {OPTIMUM_FILE} and the tokenizer files "
                                          "(default: exported now with optimum-cli and ORTQuantizer)")
    ap.add_argument("--threads", type=int, nargs="*", default=None, help="CPU budgets (default: 1 and 2)")
    ap.add_argument("--systems", default=None, help="letters of the systems to run (default: abfcde, and p with "
                                                    "--baseline-model)")
    ap.add_argument("--baseline-model", help="another koner model folder measured beside the bundled one (system p)")
    ap.add_argument("--profile", action="store_true",
                    help="instead of the side-by-side run: onnxruntime's per-operator profile of --model (and "
                         "--baseline-model) for each workload at each CPU budget")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--corpus-size", type=int, default=1000)
    ap.add_argument("--cold-reps", type=int, default=5, help="fresh processes per cold-start figure (median)")
    ap.add_argument("--quick", action="store_true", help="every system and workload, briefly; keeps its results only "
                                                          "with --out")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"folder for the results (default: ./{OUT}; `python benchmarks/run.py`: benchmarks/results)")
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
    if args.profile:
        return run_profile(args, threads_list)
    if args.systems is None:
        args.systems = "abfcde" + ("p" if args.baseline_model else "")
    unknown = sorted(set(args.systems) - set(SYSTEMS))
    if unknown or not args.systems:
        print(f"koner: --systems takes letters from {''.join(SYSTEMS)}, not {args.systems!r}", file=sys.stderr)
        return 2
    if "p" in args.systems and not args.baseline_model:
        print("koner: system p needs --baseline-model DIR (a koner model folder)", file=sys.stderr)
        return 2
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
                                   if (Path(args.model) / n).exists()) / 1e6,
                               **({"optimum int8 " + OPTIMUM_FILE: (Path(args.optimum_dir) / OPTIMUM_FILE).stat().st_size / 1e6}
                                  if args.optimum_dir else {})}}
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
    if not args.quick or args.out is not None:  # written first: a comparison never costs the run its results
        out = results_folder(args)
        out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (out / f"{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
        (out / f"{stamp}.md").write_text(md)
        chart(result, out / f"{stamp}.png")
        print(f"[bench] wrote {out}/{stamp}.json, .md, .png", file=sys.stderr)
    if args.compare:
        compare(result)
    return 0


def results_folder(args: argparse.Namespace) -> Path:
    """Where a run's results go: --out, else the caller's folder (`main(results=...)`), else ./koner-bench-results."""
    return args.out or getattr(args, "results", None) or OUT


def main(argv: "list[str] | None" = None, results: "Path | None" = None) -> int:
    """`python -m koner_export.bench [options]`; `results`: the folder used without --out (default ./koner-bench-results)."""
    ap = argparse.ArgumentParser(prog="koner bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    ap.set_defaults(results=results)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
