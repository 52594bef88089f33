"""Experiment: static int8 (QDQ, calibrated activation scales, per-channel weights) vs koner's dynamic int8.

Variants, all with fp16 embedding tables and the classifier and embedding projection in float, like
the default export:
  dynamic   the bundled model (dynamic int8: activation scales computed at every call)
  static    QDQ, activation scales calibrated on the calibration corpus (MinMax), per-channel weights,
            the weight MatMuls quantized
  static+att  the same, the attention MatMuls (activation x activation) quantized too
  fp32      the fp32 ONNX (the reference: its logits are PyTorch's within 1e-5)
Figures: model size; p50 latency at about 16 / 50 / 200 / 512 tokens, 1 thread; agreement with fp32
over the parity corpus (token labels, texts with identical `simple` entities, label flips where fp32's
two best logits are at least 0.1 apart: "decisive"); and batch safety: texts whose labels change
when they run padded in a batch of 16 instead of alone.

Usage: python benchmarks/static_int8.py [--calibration 200] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]

from common import save_results  # noqa: E402
from koner import NER  # noqa: E402
from koner import windows as win  # noqa: E402
from koner_export.corpus import CALIBRATION, PARITY_CORPUS, texts as corpus_texts  # noqa: E402

DECISIVE = 0.1


def build(tmp: Path, n_calib: int) -> dict[str, Path]:
    """Export fp32, then write the static variants beside it (same folder: koner.json and tokenizer shared)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from koner_export.export import export_model
    from koner_export.optimize import optimize
    from koner_export.quantize import QuantOptions, float_nodes, quantizable_nodes, rewrite_embeddings

    folder = tmp / "m"
    export_model(str(ROOT / "standin" / "model"), folder, keep_fp32=True, parity=False, progress=lambda m: None)
    pre = tmp / "pre.onnx"
    quant_pre_process(str(folder / "model-fp32.onnx"), str(pre), skip_symbolic_shape=True)
    ner = NER.load(folder, model_file="model-fp32.onnx", workers=1)
    calib = corpus_texts(CALIBRATION)[:n_calib] + [" ".join(corpus_texts(PARITY_CORPUS)[:40])]

    class Reader(CalibrationDataReader):
        def __init__(self):
            feeds = []
            for t in calib:
                for w in ner.windows(ner.tokenize(t)):
                    ids = w.ids[None, :]
                    feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids),
                                  "token_type_ids": np.zeros_like(ids)})
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    out = {"fp32": folder / "model-fp32.onnx", "dynamic": folder / "model.onnx"}
    for name, const_b_only in (("static", True), ("static+att", False)):
        model = onnx.load(str(pre))
        opts = QuantOptions()
        keep = float_nodes(model.graph, opts)
        keep += rewrite_embeddings(model, skip=set(keep), storage="fp16")
        raw = tmp / f"{name}-raw.onnx"
        quantize_static(model, str(raw), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=keep, extra_options={"MatMulConstBOnly": const_b_only})
        path = folder / f"model-{name.replace('+', '-')}.onnx"
        optimize(raw, path)
        out[name] = path
        print(f"[static] {name}: {len(quantizable_nodes(model.graph, ['MatMul']))} MatMuls in the graph, "
              f"{path.stat().st_size / 1e6:.2f} MB", file=sys.stderr, flush=True)
    return out


def latency(ner: NER, texts: dict[str, str], reps: int) -> dict:
    out = {}
    for name, text in texts.items():
        for _ in range(5):
            ner(text)
        times = []
        for _ in range(reps if name != "512" else max(10, reps // 5)):
            s = time.perf_counter()
            ner(text)
            times.append(time.perf_counter() - s)
        out[name] = round(1000 * statistics.median(times), 3)
    return out


def agreement(ref: NER, got: NER, texts: list[str]) -> dict:
    tok = same_tok = same_ents = decisive = flips = 0
    for t in texts:
        toks = ref.tokenize(t)
        plan = ref.windows(toks)
        a = win.stitch(len(toks.ids), plan, [ref.session.run(w.ids[None], np.ones((1, len(w.ids)), np.int64))[0]
                                             for w in plan])
        b = win.stitch(len(toks.ids), plan, [got.session.run(w.ids[None], np.ones((1, len(w.ids)), np.int64))[0]
                                             for w in plan])
        keep = ~toks.special
        pa, pb = a.argmax(-1), b.argmax(-1)
        diff = keep & (pa != pb)
        tok += int(keep.sum())
        same_tok += int((keep & (pa == pb)).sum())
        top2 = np.sort(a, -1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        flips += int(diff.sum())
        decisive += int((diff & (margin >= DECISIVE)).sum())
        same_ents += [e.to_dict() for e in ref(t)] == [e.to_dict() for e in got(t)] or \
            [(e.label, e.start, e.end) for e in ref(t)] == [(e.label, e.start, e.end) for e in got(t)]
    return {"token_agreement": round(same_tok / tok, 5), "simple_identical": round(same_ents / len(texts), 4),
            "flips": flips, "decisive_flips": decisive}


def batch_changes(ner: NER, texts: list[str]) -> int:
    """Texts whose token labels differ when run padded in batches of 16 instead of one at a time."""
    changed = 0
    for s in range(0, len(texts), 16):
        group = [ner.tokenize(t).ids for t in texts[s:s + 16]]
        n = max(len(x) for x in group)
        ids = np.zeros((len(group), n), np.int64)
        mask = np.zeros((len(group), n), np.int64)
        for r, x in enumerate(group):
            ids[r, :len(x)], mask[r, :len(x)] = x, 1
        together = ner.session.run(ids, mask)
        for r, x in enumerate(group):
            alone = ner.session.run(x[None], np.ones((1, len(x)), np.int64))[0]
            changed += bool((alone.argmax(-1) != together[r, :len(x)].argmax(-1)).any())
    return changed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibration", type=int, default=200)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    corpus = corpus_texts(PARITY_CORPUS)
    short = [t for t in corpus if t.strip() and len(t) < 300]
    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp), args.calibration)
        folder = files["fp32"].parent
        models = {k: NER.load(folder, model_file=v.name, threads=1, workers=1) for k, v in files.items()}
        sizes = {k: round(sum(p.stat().st_size for p in [v] + ([folder / "model.onnx.data"] if k == "dynamic" else []))
                          / 1e6, 2) for k, v in files.items()}
    ref = models["fp32"]
    lengths = {}
    unit = "2023년 3월 15일 오후 3시에 서울 서초구 삼성전자 본사에서 이재용 회장이 기자회견을 열었다. "
    for name, want in (("16", 16), ("50", 50), ("200", 200), ("512", 510)):
        text = unit
        while len(ref.tokenize(text).ids) < want:
            text += unit
        ids = ref.tokenize(text).ids
        while len(ids) > want:  # trim whole words until the token count fits
            text = text.rsplit(" ", 1)[0]
            ids = ref.tokenize(text).ids
        lengths[name] = text
    result = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "sizes_mb": sizes,
              "tokens": {k: len(ref.tokenize(v).ids) for k, v in lengths.items()}, "variants": {}}
    for name, ner in models.items():
        r = {"latency_p50_ms": latency(ner, lengths, args.reps), "batch_changes_of_64": batch_changes(ner, short[:64])}
        if name != "fp32":
            r.update(agreement(ref, ner, corpus))
        result["variants"][name] = r
        print(f"[static] {name}: {json.dumps(r)}", file=sys.stderr, flush=True)
    lines = ["| variant | size MB | p50 ms at " + " / ".join(f"{v} tok" for v in result["tokens"].values()) +
             " | token agreement with fp32 | identical `simple` texts | flips (decisive) | texts changed by "
             "batching (of 64) |", "|---|---|---|---|---|---|---|"]
    for name, r in result["variants"].items():
        lat = " / ".join(f"{x:.2f}" for x in r["latency_p50_ms"].values())
        agree = (f"{r['token_agreement']:.3%} | {r['simple_identical']:.2%} | {r['flips']} ({r['decisive_flips']})"
                 if "token_agreement" in r else "reference | reference | –")
        lines.append(f"| {name} | {sizes[name]} | {lat} | {agree} | {r['batch_changes_of_64']} |")
    save_results(args.out, "static-int8", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
