"""koner's own cost on top of bare onnxruntime, per architecture (sentence workload, 1 thread).

For each architecture a random-weight token classifier the size of the bundled model (hidden 256, 12 layers,
4 heads, 31 labels; DistilBERT: its 6 layers) is exported by `koner export` (int8, no parity), twice: with its
O bias raised until 85% of tokens are O (as a trained model labels them; koner's cost grows with the entities
it builds), and with the sharpened random head alone ("dense labels": nearly every token an entity). Two timings over
the same sentences, alternating, best of 5 passes: koner's `ner(text)` (tokenize, run, entities) and bare
onnxruntime as `koner bench`'s system (e) runs it: the `tokenizers` library's encode + session.run (koner's session
options, the graph's inputs), nothing else.
Writes benchmarks/results/architectures-DATE.md/.json. Run alone on a quiet machine:

  python benchmarks/architectures.py [--texts 300]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "runtime"), str(ROOT / "export")]
SIZE = dict(hidden_size=256, num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024)


def sentences(n: int) -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "export" / "koner_export" / "data" / "outside-corpus.jsonl")
            .read_text("utf-8").splitlines()]
    return [r["text"] for r in rows if 20 <= len(r["text"]) <= 120][:n]


def build(arch: str, out: Path, texts: list[str], o_share: float | None) -> Path:
    """A random-weight `arch` classifier; `o_share`: its O bias raised until that share of tokens is O (a trained
    NER model labels most tokens O), else the sharpened random head, which labels nearly every token."""
    import numpy as np
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    import tiny_models

    size = dict(SIZE, num_hidden_layers=6) if arch == "distilbert" else SIZE  # DistilBERT: half the layers
    src = tiny_models.build(arch, out, size=size)
    if o_share is None:
        return src
    model = AutoModelForTokenClassification.from_pretrained(str(src)).eval()
    tok = AutoTokenizer.from_pretrained(str(src))
    with torch.no_grad():
        rows = np.concatenate([model(**tok(t, return_tensors="pt")).logits[0].numpy() for t in texts[:60]])
    gap = rows[:, 1:].max(-1) - rows[:, 0]  # how far O is from winning on each token
    with torch.no_grad():
        model.classifier.bias[0] += float(np.quantile(gap, o_share))
    model.save_pretrained(str(src))
    return src


def measure(folder: Path, texts: list[str]) -> dict:
    import numpy as np

    from koner import NER

    from tokenizers import Tokenizer

    ner = NER.load(folder, threads=1, workers=1)
    sess = ner.session
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))  # what a bare onnxruntime user runs: tokenizers

    def bare(text: str):
        x = np.asarray([tok.encode(text).ids], np.int64)
        return sess.run(x, np.ones_like(x))

    ids = [np.asarray(ner.tokenize(t).ids, np.int64)[None, :] for t in texts]
    for t in texts[:20]:
        ner(t)
        bare(t)
    koner_best, bare_best = float("inf"), float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for t in texts:
            ner(t)
        koner_best = min(koner_best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for t in texts:
            bare(t)
        bare_best = min(bare_best, time.perf_counter() - t0)
    n = len(texts)
    return {"koner_ms": round(1000 * koner_best / n, 3), "bare_ms": round(1000 * bare_best / n, 3),
            "ratio": round(koner_best / bare_best, 3), "inputs": list(sess.input_names),
            "tokens_mean": round(float(np.mean([x.shape[1] for x in ids])), 1),
            "entities_mean": round(float(np.mean([len(ner(t)) for t in texts])), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    from koner.cpu import int8_path
    from koner_export import export_model

    texts = sentences(args.texts)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("electra", "bert", "roberta", "xlm-roberta", "distilbert"):
            for name, share in ((arch, 0.85), (f"{arch}, dense labels", None)):
                src = build(arch, Path(tmp) / name, texts, share)
                out = Path(tmp) / f"{name}-koner"
                export_model(str(src), out, parity=False, progress=lambda m: None)
                results[name] = measure(out, texts)
                print(name, results[name], file=sys.stderr, flush=True)
        results["bundled"] = measure(ROOT / "runtime" / "koner" / "models" / "default", texts)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    doc = {"texts": len(texts), "machine": {"cpu": platform.processor() or platform.machine(),
                                            "int8_path": int8_path()}, "results": results}
    (args.out / f"architectures-{stamp}.json").write_text(json.dumps(doc, indent=1) + "\n", "utf-8")
    lines = [f"# koner over bare onnxruntime, per architecture ({len(texts)} outside-corpus sentences, 1 thread, "
             f"best of 5; int8 path {int8_path()})", "",
             "| model | graph inputs | tokens (mean) | entities (mean) | bare onnxruntime ms | koner ms | koner / bare |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {', '.join(r['inputs'])} | {r['tokens_mean']} | {r['entities_mean']} | {r['bare_ms']} | "
                     f"{r['koner_ms']} | "
                     f"{r['ratio']}x |")
    (args.out / f"architectures-{stamp}.md").write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
