"""The parity suite: does the runtime answer like the PyTorch model, sentence by sentence?

Compares, on a Korean corpus: tokenization (ids and offsets), logits (fp32 ONNX vs PyTorch), token
labels (int8 and fp32 vs PyTorch), entity lists against the transformers pipeline for every
aggregation strategy, entity P/R/F1 taking PyTorch as reference, F1 against gold spans where the
corpus has them, and the worst disagreements with both probabilities.
"""
from __future__ import annotations

import json
import random
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from koner import NER
from koner import windows as win
from koner.aggregate import STRATEGIES, softmax

CORPUS = Path(__file__).resolve().parent / "data" / "parity-corpus.jsonl"
THRESHOLDS = {
    "tokenization_identical": 1.0,  # share of texts with identical ids and offsets
    "fp32_entities_identical": 1.0,  # share of texts whose fp32 entity lists equal the pipeline's (all strategies)
    "fp32_score_tolerance": 1e-4,
    "int8_token_agreement": 0.995,
    "int8_simple_identical": 0.99,
    "gold_f1_drop": 0.005,
}
# Two labels whose logits are this close are a coin toss for the model itself: any rounding can swap them.
NEAR_TIE = 0.01


def load_corpus(path: Optional[Path] = None, sample: Optional[int] = None, seed: int = 0) -> list[dict]:
    """Corpus rows ({'text', optional 'id', 'category', 'gold'}); `sample` keeps every category."""
    rows = []
    with open(path or CORPUS, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                r = json.loads(line)
                r.setdefault("id", str(n))
                r.setdefault("category", "text")
                rows.append(r)
    if sample and sample < len(rows):
        by_cat: dict[str, list] = defaultdict(list)
        for r in rows:
            by_cat[r["category"]].append(r)
        rng = random.Random(seed)
        share = sample / len(rows)
        rows = [r for cat in sorted(by_cat) for r in
                rng.sample(by_cat[cat], max(1, min(len(by_cat[cat]), round(len(by_cat[cat]) * share))))]
    return rows


def _prf(ref: list[set], got: list[set]) -> dict:
    tp = sum(len(a & b) for a, b in zip(ref, got))
    n_ref, n_got = sum(map(len, ref)), sum(map(len, got))
    p = tp / n_got if n_got else 1.0
    r = tp / n_ref if n_ref else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def _spans(ents) -> set:
    return {(e["start"], e["end"], e.get("entity_group", e.get("entity"))) for e in ents}


def _same(ref: list[dict], got: list[dict], tol: Optional[float]) -> bool:
    if len(ref) != len(got):
        return False
    for a, b in zip(ref, got):
        if {k: v for k, v in a.items() if k != "score"} != {k: v for k, v in b.items() if k != "score"}:
            return False
        if tol is not None and abs(float(a["score"]) - b["score"]) > tol:
            return False
    return True


def run_parity(ckpt, onnx_dir: Path, *, corpus: Optional[Path] = None, sample: Optional[int] = None,
               thresholds: Optional[dict] = None, progress: Callable[[str], None] = lambda m: None) -> dict:
    """Run the suite; returns {'passed', 'failures', 'summary', 'markdown', ...} (see module doc)."""
    import torch
    from transformers import pipeline

    th = {**THRESHOLDS, **(thresholds or {})}
    onnx_dir = Path(onnx_dir)
    rows = load_corpus(corpus, sample)
    texts = [r["text"] for r in rows]
    tmp = None
    fp32_file = "model-fp32.onnx"
    if not (onnx_dir / fp32_file).is_file():
        from .onnx_export import export

        tmp = tempfile.TemporaryDirectory()
        for name in ("koner.json", "tokenizer.json"):
            (Path(tmp.name) / name).write_bytes((onnx_dir / name).read_bytes())
        export(ckpt.model, ckpt.tokenizer, Path(tmp.name) / fp32_file)
        fp32_dir = Path(tmp.name)
    else:
        fp32_dir = onnx_dir
    rt8 = NER.load(onnx_dir, threads=1)
    rt32 = NER.load(fp32_dir, threads=1, model_file=fp32_file)
    labels = rt8.labels
    if list(labels) != list(ckpt.labels):
        progress("warning: the manifest's labels differ from the checkpoint's")

    # 1. tokenization
    progress(f"tokenization on {len(texts)} texts")
    tok_bad = []
    encoded = [rt8.tokenizer.encode(t) for t in texts]
    for r, t, mine in zip(rows, texts, encoded):
        ref = ckpt.tokenizer(t, return_offsets_mapping=True, add_special_tokens=True)
        if list(mine.ids) != list(ref["input_ids"]) or [tuple(o) for o in mine.offsets] != \
                [tuple(o) for o in ref["offset_mapping"]]:
            tok_bad.append(r["id"])

    # 2-3. logits and token labels, over the runtime's own windows
    progress("logits and token labels")
    model = ckpt.model
    max_diff32 = 0.0
    agree8 = agree32 = n_tok = 0
    flips = []
    fits = []
    near_tie_texts = 0
    for r, t, toks in zip(rows, texts, encoded):
        fits.append(len(toks.ids) <= rt8.max_length)
        plan = win.plan(toks, rt8.max_length, rt8.overlap)
        ref_l, l32, l8 = [], [], []
        for w in plan:
            ids = w.ids[None, :]
            mask = np.ones_like(ids)
            with torch.no_grad():
                ref_l.append(model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                   token_type_ids=torch.zeros_like(torch.from_numpy(ids))).logits[0].numpy())
            l32.append(rt32.session.run(ids, mask)[0])
            l8.append(rt8.session.run(ids, mask)[0])
        ref = win.stitch(len(toks.ids), plan, ref_l)
        a32 = win.stitch(len(toks.ids), plan, l32)
        a8 = win.stitch(len(toks.ids), plan, l8)
        keep = ~toks.special
        max_diff32 = max(max_diff32, float(np.abs(a32 - ref).max()))
        pr, p32, p8 = ref.argmax(-1), a32.argmax(-1), a8.argmax(-1)
        agree32 += int((pr == p32)[keep].sum())
        agree8 += int((pr == p8)[keep].sum())
        n_tok += int(keep.sum())
        top2 = np.sort(ref[keep], -1)[:, -2:]
        near_tie_texts += bool(top2.size and (top2[:, 1] - top2[:, 0]).min() < NEAR_TIE)
        pref, p8s = softmax(ref), softmax(a8)
        for i in np.flatnonzero(keep & (pr != p8)):
            flips.append({"id": r["id"], "text": t if len(t) <= 200 else t[:200] + "…", "token": toks.strings[i],
                          "start": toks.offsets[i][0], "end": toks.offsets[i][1],
                          "pytorch": labels[pr[i]], "pytorch_p": round(float(pref[i, pr[i]]), 4),
                          "int8": labels[p8[i]], "int8_p": round(float(p8s[i, p8[i]]), 4),
                          "pytorch_margin": round(float(pref[i, pr[i]] - pref[i, p8[i]]), 4),
                          "pytorch_logit_margin": round(float(ref[i, pr[i]] - ref[i, p8[i]]), 4)})
    flips.sort(key=lambda f: -f["pytorch_margin"])

    # 4. entities against the transformers pipeline (texts within the model's length: the pipeline truncates)
    progress("entities against the transformers pipeline, five strategies")
    fit_idx = [k for k, f in enumerate(fits) if f and texts[k].strip()]
    per_strategy = {}
    pt_simple = None
    rt8_simple = None
    for s in STRATEGIES:
        pipe = pipeline("token-classification", model=model, tokenizer=ckpt.tokenizer, aggregation_strategy=s,
                        device=-1)
        refs = [pipe(texts[k]) for k in fit_idx]
        got32 = rt32.batch([texts[k] for k in fit_idx], batch_size=1, aggregation=s)
        got8 = rt8.batch([texts[k] for k in fit_idx], batch_size=1, aggregation=s)
        d32 = [[e.to_dict() for e in g] for g in got32]
        d8 = [[e.to_dict() for e in g] for g in got8]
        same32 = sum(_same(a, b, th["fp32_score_tolerance"]) for a, b in zip(refs, d32))
        same8 = sum(_same(a, b, None) for a, b in zip(refs, d8))
        worst_score = max((abs(float(a["score"]) - b["score"]) for ra, rb in zip(refs, d32)
                           for a, b in zip(ra, rb)), default=0.0)
        per_strategy[s] = {"fp32_identical": round(same32 / max(1, len(refs)), 4),
                           "int8_identical": round(same8 / max(1, len(refs)), 4),
                           "fp32_max_score_diff": float(f"{worst_score:.2e}"),
                           "int8_vs_pytorch": _prf([_spans(a) for a in refs], [_spans(b) for b in d8])}
        if s == "simple":
            pt_simple, rt8_simple = refs, d8

    # 5. gold
    gold = None
    gold_idx = [j for j, k in enumerate(fit_idx) if rows[k].get("gold") is not None]
    if gold_idx:
        g = [{tuple(x) for x in rows[fit_idx[j]]["gold"]} for j in gold_idx]
        f_pt = _prf(g, [_spans(pt_simple[j]) for j in gold_idx])["f1"]
        f_rt = _prf(g, [_spans(rt8_simple[j]) for j in gold_idx])["f1"]
        gold = {"sentences": len(gold_idx), "pytorch_f1": f_pt, "int8_f1": f_rt, "drop": round(f_pt - f_rt, 4)}

    summary = {
        "texts": len(rows), "texts_within_max_length": len(fit_idx), "tokens": n_tok,
        "categories": dict(sorted(Counter(r["category"] for r in rows).items())),
        "tokenization_identical": round(1 - len(tok_bad) / max(1, len(rows)), 4),
        "fp32_max_abs_logit_diff": float(f"{max_diff32:.2e}"),
        "fp32_token_agreement": round(agree32 / max(1, n_tok), 5),
        "int8_token_agreement": round(agree8 / max(1, n_tok), 5),
        "int8_flips": {"tokens": len(flips), "texts": len({f["id"] for f in flips}),
                       "max_pytorch_logit_margin": max((f["pytorch_logit_margin"] for f in flips), default=None)},
        "pytorch_near_ties": {"logit_margin": NEAR_TIE, "texts": near_tie_texts},
        "strategies": per_strategy,
        "gold": gold,
    }
    failures = []
    if summary["tokenization_identical"] < th["tokenization_identical"]:
        failures.append(f"tokenization differs on {len(tok_bad)} texts (e.g. {tok_bad[:3]})")
    for s, v in per_strategy.items():
        if v["fp32_identical"] < th["fp32_entities_identical"]:
            failures.append(f"fp32 '{s}' entities identical on {v['fp32_identical']:.2%} of texts "
                            f"(< {th['fp32_entities_identical']:.2%}; max score diff {v['fp32_max_score_diff']})")
    if summary["int8_token_agreement"] < th["int8_token_agreement"]:
        failures.append(f"int8 token labels agree with PyTorch on {summary['int8_token_agreement']:.2%} "
                        f"(< {th['int8_token_agreement']:.2%})")
    if per_strategy["simple"]["int8_identical"] < th["int8_simple_identical"]:
        failures.append(f"int8 'simple' entities identical on {per_strategy['simple']['int8_identical']:.2%} "
                        f"of texts (< {th['int8_simple_identical']:.2%})")
    if gold and gold["drop"] > th["gold_f1_drop"]:
        failures.append(f"int8 gold F1 {gold['int8_f1']:.4f} is {gold['drop'] * 100:.2f} points below "
                        f"PyTorch's {gold['pytorch_f1']:.4f} (> {th['gold_f1_drop'] * 100:.1f})")
    if tmp is not None:
        tmp.cleanup()
    report = {"passed": not failures, "failures": failures, "summary": summary, "thresholds": th,
              "worst_disagreements": flips[:20], "tokenization_mismatches": tok_bad[:50]}
    report["markdown"] = _markdown(report)
    return report


def _markdown(rep: dict) -> str:
    s = rep["summary"]
    lines = [f"## koner parity: {'PASSED' if rep['passed'] else 'FAILED'}", "",
             f"{s['texts']} texts ({', '.join(f'{k} {v}' for k, v in s['categories'].items())}), {s['tokens']} tokens", "",
             "| check | value |", "|---|---|",
             f"| tokenization identical | {s['tokenization_identical']:.2%} |",
             f"| fp32 max abs logit diff | {s['fp32_max_abs_logit_diff']:.1e} |",
             f"| fp32 token-label agreement | {s['fp32_token_agreement']:.3%} |",
             f"| int8 token-label agreement | {s['int8_token_agreement']:.3%} |"]
    fl, nt = s["int8_flips"], s["pytorch_near_ties"]
    lines.append(f"| int8 label flips: tokens / texts (largest PyTorch logit margin among them) | "
                 f"{fl['tokens']} / {fl['texts']} ({fl['max_pytorch_logit_margin']}) |")
    lines.append(f"| texts where PyTorch's two best logits are within {nt['logit_margin']} (near-ties) | "
                 f"{nt['texts']} ({nt['texts'] / max(1, s['texts']):.2%}) |")
    for k, v in s["strategies"].items():
        lines.append(f"| `{k}` entities identical, fp32 / int8 | {v['fp32_identical']:.2%} / {v['int8_identical']:.2%} "
                     f"(int8 F1 vs PyTorch {v['int8_vs_pytorch']['f1']:.4f}) |")
    if s["gold"]:
        g = s["gold"]
        lines.append(f"| gold F1 PyTorch / int8 ({g['sentences']} sentences) | {g['pytorch_f1']:.4f} / "
                     f"{g['int8_f1']:.4f} (drop {g['drop'] * 100:.2f} pt) |")
    if rep["failures"]:
        lines += ["", "Failures:"] + [f"- {f}" for f in rep["failures"]]
    if rep["worst_disagreements"]:
        lines += ["", "Worst int8 label flips (PyTorch label p / int8 label p, PyTorch's logit margin between the two):"]
        for f in rep["worst_disagreements"][:5]:
            lines.append(f"- {f['id']} `{f['token']}` [{f['start']}:{f['end']}]: {f['pytorch']} {f['pytorch_p']} / "
                         f"{f['int8']} {f['int8_p']} (logit margin {f['pytorch_logit_margin']})")
    return "\n".join(lines) + "\n"
