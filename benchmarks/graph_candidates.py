"""Which int8 graph should koner export? Every fusion and kernel choice measured A/B on the stand-in.

Each candidate is the stand-in's int8 model built one way (onnxruntime's dynamic quantizer, fp16 embedding tables, float
head and projection); for each: graph nodes, ms per call on bare onnxruntime (median over interleaved
rounds) for four workloads (short 8 tokens, sentence 48, paragraph 140, one 512-token window) at 1 and 2
intra-op threads, texts/s over 256 outside-corpus texts padded into batches of 1 / 4 / 8 (1 thread), the
operator profile of a sentence, and the parity gate on both corpora (identical `simple` entities, decisive
flips). `--quick` skips parity (timings and profiles only).

Usage: python benchmarks/graph_candidates.py [--out benchmarks/results] [--quick] [--only I,J]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]

from common import save_results  # noqa: E402

SENTENCE = ("2023년 3월 15일 오후 3시에 서울 서초구 삼성전자 본사에서 이재용 회장이 기자회견을 열고 "
            "반도체 투자 계획을 발표했으며, 이 자리에는 100여 명의 기자가 참석했다.")
WORKLOADS = {"short": "서울역으로 안내해줘.", "sentence": SENTENCE, "paragraph": " ".join([SENTENCE] * 3)}
REPEATS = {"short": 60, "sentence": 40, "paragraph": 15, "window512": 4}
ROUNDS = 5

# name -> (how it is built, the load-time optimization level)
CANDIDATES = {
    "A: onnxruntime's fusions (koner 0.1's graph)": ("plain", "basic"),
    "B: A + SkipLayerNorm split into Add + LayerNorm": ("plain+split", "basic"),
    "C: attention fused (QAttention)": ("fused", "basic"),
    "D: C + SkipLayerNorm split": ("fused+split", "basic"),
    "E: D + BiasGelu split, biases folded into the int8 MatMuls (default)": ("fused+split+fold", "basic"),
    "E at load level extended": ("fused+split+fold", "extended"),
    "E at load level all": ("fused+split+fold", "all"),
    "F: E with FastGelu (tanh approximation)": ("fused+split+fold+fastgelu", "basic"),
    "G: E with the fused Attention in float": ("fused-float-attention+split+fold", "basic"),
    "H: E with EmbedLayerNormalization": ("fused-embed+split+fold", "basic"),
    "I: per-token activation scales (batch invariant), attention unfused": ("per-token", "basic"),
    "J: MatMulNBits 8-bit blocks, accuracy level 4 (per-row int8)": ("nbits+split+fold", "basic"),
}


def build(recipe: str, fp32: Path, out: Path, heads: int, hidden: int) -> dict:
    """Write the candidate model `recipe` to `out`; returns its rewrite counts."""
    import onnx

    from koner_export import rewrite
    import graph_rewrites
    from koner_export.graph import quantize_fused
    from koner_export.optimize import optimize
    from koner_export.quantize import QuantOptions, float_nodes, preprocess, quantize, rewrite_embeddings

    parts = recipe.split("+")
    info: dict = {}
    opts = QuantOptions()
    with tempfile.TemporaryDirectory() as tmp:
        pre, q = Path(tmp) / "pre.onnx", Path(tmp) / "q.onnx"
        preprocess(fp32, pre)
        base = parts[0]
        if base == "plain":
            quantize(pre, q, opts, preprocessed=True)
        elif base.startswith("fused"):
            info["attention"] = quantize_fused(pre, q, opts, heads, hidden,
                                                int8_attention=base != "fused-float-attention",
                                                embed_layernorm=base == "fused-embed")
        elif base == "nbits":
            m = onnx.load(str(pre))
            skip = float_nodes(m.graph, opts)
            rewrite_embeddings(m, skip=set(skip))
            info["nbits"] = graph_rewrites.matmul_nbits(m, skip)
            onnx.save(m, str(q))
        optimize(q, out)
    m = onnx.load(str(out))
    for step in parts[1:]:
        if step == "split":
            info["split"] = rewrite.split_skip_layernorm(m)
        elif step == "fold":
            info["bias_gelu"] = rewrite.split_bias_gelu(m)
            info["fold"] = rewrite.fold_bias(m)
        elif step == "fastgelu":
            info["fastgelu"] = graph_rewrites.fast_gelu(m)
    onnx.save(m, str(out))
    info["nodes"] = len(m.graph.node)
    return info


def feeds(tokenizer) -> dict:
    """Token-id arrays of the four workloads."""
    import numpy as np

    out = {k: np.array([tokenizer.encode(t).ids], np.int64) for k, t in WORKLOADS.items()}
    ids = tokenizer.encode(" ".join([SENTENCE] * 20)).ids
    out["window512"] = np.array([ids[:511] + ids[-1:]], np.int64)
    return out


def latency(paths: dict, level_of: dict, work: dict, threads: int) -> dict:
    """Median ms per call of each candidate and workload, candidates interleaved round by round."""
    import onnxruntime as ort

    from koner.session import session_options
    from koner_export.profile import feed_for

    sessions = {}
    for name, path in paths.items():
        s = ort.InferenceSession(str(path), session_options(threads, level_of[name]), providers=["CPUExecutionProvider"])
        sessions[name] = (s, {k: feed_for([i.name for i in s.get_inputs()], ids) for k, ids in work.items()})
    times: dict = {n: {k: [] for k in work} for n in paths}
    for _ in range(ROUNDS):
        for name, (s, fs) in sessions.items():
            for k, feed in fs.items():
                s.run(None, feed)
                for _ in range(REPEATS[k]):
                    t = time.perf_counter()
                    s.run(None, feed)
                    times[name][k].append(time.perf_counter() - t)
    return {n: {k: round(1000 * statistics.median(v), 3) for k, v in w.items()} for n, w in times.items()}


def batched(path: Path, level: str, encoded: list[list[int]], sizes=(1, 4, 8)) -> dict:
    """Texts per second over `encoded` (length-sorted) padded into batches of each size, 1 thread (best of 2)."""
    import numpy as np
    import onnxruntime as ort

    from koner.session import session_options

    s = ort.InferenceSession(str(path), session_options(1, level), providers=["CPUExecutionProvider"])
    names = [i.name for i in s.get_inputs()]
    out = {}
    for b in sizes:
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            for i in range(0, len(encoded), b):
                chunk = encoded[i:i + b]
                width = max(map(len, chunk))
                ids = np.zeros((len(chunk), width), np.int64)
                mask = np.zeros_like(ids)
                for j, e in enumerate(chunk):
                    ids[j, :len(e)], mask[j, :len(e)] = e, 1
                feed = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in names:
                    feed["token_type_ids"] = np.zeros_like(ids)
                s.run(None, {k: v for k, v in feed.items() if k in names})
            best = min(best, time.perf_counter() - t)
        out[str(b)] = round(len(encoded) / best, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--quick", action="store_true", help="timings and profiles only, no parity")
    ap.add_argument("--only", help="comma-separated candidate letters to run (A, the reference, always runs)")
    args = ap.parse_args()
    chosen = {n: c for n, c in CANDIDATES.items()
              if not args.only or n[0] == "A" and n[1] == ":" or n[0] in args.only.split(",") and n[1] == ":"}
    from koner.cpu import int8_path
    from koner_export.checkpoint import load
    from koner_export.corpus import DATA, PARITY_CORPUS
    from koner_export.environment import machine, versions
    from koner_export.export import export_model
    from koner_export.parity import run_parity
    from koner_export.profile import op_profile
    from koner_export.quantize import QuantOptions
    from koner.manifest import MODEL_FILE

    src = ROOT / "standin" / "model"
    ckpt = load(src)
    heads, hidden = ckpt.model.config.num_attention_heads, ckpt.model.config.hidden_size
    result: dict = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), "versions": versions(),
                    "int8_path": int8_path(), "candidates": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        template = tmp / "template"
        export_model(str(src), template, parity=False, external=False, keep_fp32=True, progress=lambda m: None)
        fp32 = template / "model-fp32.onnx"
        paths, levels, built = {}, {}, {}
        for name, (recipe, level) in chosen.items():
            if recipe not in built:
                folder = tmp / f"c{len(built)}"
                if recipe == "per-token":  # export's own build, manifest included (it tells the runtime to batch)
                    export_model(str(src), folder, quant=QuantOptions(activations="per-token"), parity=False,
                                 external=False, progress=lambda m: None)
                    built[recipe] = (folder, json.loads((folder / "koner.json").read_text())["export"]["graph"])
                else:
                    shutil.copytree(template, folder)
                    built[recipe] = (folder, build(recipe, fp32, folder / MODEL_FILE, heads, hidden))
            paths[name], levels[name] = built[recipe][0] / MODEL_FILE, level
            result["candidates"][name] = {"recipe": recipe, "load_level": level, "rewrites": built[recipe][1]}
            print(f"[graphs] built {name}: {built[recipe][1]}", file=sys.stderr, flush=True)
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(template / "tokenizer.json"))
        work = feeds(tok)
        for threads in (1, 2):
            for name, ms in latency(paths, levels, work, threads).items():
                result["candidates"][name][f"ms_{threads}cpu"] = ms
            print(f"[graphs] latency at {threads} thread(s) done", file=sys.stderr, flush=True)
        texts = [json.loads(l)["text"] for l in (DATA / "outside-corpus.jsonl").open(encoding="utf-8")][:256]
        encoded = sorted((tok.encode(t).ids[:512] for t in texts), key=len)
        for name in paths:
            c = result["candidates"][name]
            c["texts_per_s_by_batch"] = batched(paths[name], levels[name], encoded)
            prof = op_profile(paths[name], work["sentence"], calls=30, level=levels[name])
            c["profile_sentence_1cpu"] = prof
            c["nodes_at_run"] = prof["nodes"]
            if not args.quick:
                c["parity"] = {}
                for corpus_name, corpus in (("parity", PARITY_CORPUS), ("outside", DATA / "outside-corpus.jsonl")):
                    rep = run_parity(ckpt, paths[name].parent, corpus=corpus, strategies=("simple",),
                                     optimization=levels[name])
                    s = rep["summary"]
                    c["parity"][corpus_name] = {
                        "texts": s["texts"], "passed": rep["passed"],
                        "simple_identical": s["strategies"]["simple"]["int8_identical"],
                        "token_agreement": s["int8_token_agreement"],
                        "decisive_flips": s["int8_flips"]["decisive_tokens"],
                        "max_flip_margin": s["int8_flips"]["max_pytorch_logit_margin"]}
            print(f"[graphs] {name}: {json.dumps({k: v for k, v in c.items() if k != 'profile_sentence_1cpu'})}",
                  file=sys.stderr, flush=True)
    save_results(args.out, "graphs", result, table(result))


def table(result: dict) -> str:
    """The candidate table (markdown), ratios against candidate A."""
    names = list(result["candidates"])
    ref = result["candidates"][names[0]]
    lines = [f"Machine: {result['machine'].get('cpu', '?')}, int8 path {result['int8_path']}; bare onnxruntime, "
             "median ms per call (ratio to A)\n",
             "| candidate | nodes run | short 1 / 2 CPU | sentence 1 / 2 CPU | paragraph 1 / 2 CPU | 512 window 1 / 2 CPU "
             "| texts/s batch 1 / 4 / 8 | parity corpus identical / decisive | outside corpus identical / decisive |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        c = result["candidates"][name]
        cells = []
        for k in ("short", "sentence", "paragraph", "window512"):
            a, b = c["ms_1cpu"][k], c["ms_2cpu"][k]
            cells.append(f"{a} ({a / ref['ms_1cpu'][k]:.2f}x) / {b} ({b / ref['ms_2cpu'][k]:.2f}x)")
        tps = " / ".join(str(v) for v in c["texts_per_s_by_batch"].values())
        par = []
        for corpus in ("parity", "outside"):
            p = c.get("parity", {}).get(corpus)
            par.append(f"{p['simple_identical']:.2%} / {p['decisive_flips']}" if p else "not run")
        lines.append(f"| {name} | {c['nodes_at_run']} | " + " | ".join(cells) + f" | {tps} | {par[0]} | {par[1]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
