"""The parity suite: does the runtime answer like the PyTorch model, sentence by sentence?

Compares, on a Korean corpus: tokenization (ids and offsets), logits (fp32 ONNX vs PyTorch), token
labels (int8 and fp32 vs PyTorch), entity lists against the transformers pipeline for every
aggregation strategy, entity P/R/F1 taking PyTorch as reference, F1 against gold spans where the
corpus has them, and the worst disagreements with both probabilities.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from koner import NER
from koner import windows as win
from koner.aggregate import STRATEGIES, softmax
from koner.check import TIE_MARGIN
from koner.cpu import int8_path
from koner.manifest import MANIFEST_FILE, MODEL_FP32_FILE, TOKENIZER_FILE, read_manifest

from .checkpoint import pipeline_tokenizer, torch_logits
from .corpus import PARITY_CORPUS as CORPUS, read_jsonl, sample_rows
from .errors import one_line

THRESHOLDS = {
    "tokenization_identical": 1.0,  # share of texts with identical ids and offsets
    "fp32_entities_identical": 1.0,  # share of texts whose fp32 entity lists equal the pipeline's (all strategies)
    "fp32_score_tolerance": 1e-4,
    "int8_token_agreement": 0.995,
    "int8_decisive_texts": 0.002,  # at most this share of texts may differ decisively (see DECISIVE below)
    "gold_f1_drop": 0.005,
}
# Reported with its target, but not a gate: on an uncertain model it mostly counts coin flips.
TARGETS = {"int8_simple_identical": 0.99}
# A flip is decisive when PyTorch preferred its own label over the int8 label by at least TIE_MARGIN logits
# (0.1, shared with `koner check`). Every flip of the default export measured on the bundled corpora was under
# 0.04; the noise test in tests/test_parity.py (logits moved by 0.1-0.5) flips tokens past 1.
# Two labels whose logits are this close are a coin toss for the model itself: any rounding can swap them.
NEAR_TIE = 0.01


def load_corpus(path: Optional[Path] = None, sample: Optional[int] = None, seed: int = 0) -> list[dict]:
    """Corpus rows ({'text', optional 'id', 'category', 'gold'}); `sample` keeps every category."""
    return sample_rows(read_jsonl(path or CORPUS), sample, seed)


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


@dataclass
class _Labels:
    """What the token-label stage measured over the corpus."""

    max_diff32: float = 0.0
    agree8: int = 0
    agree32: int = 0
    tokens: int = 0
    near_tie_texts: int = 0
    fits: list = field(default_factory=list)  # per text: within the model's length
    flips: list = field(default_factory=list)
    reference: list = field(default_factory=list)  # per text: PyTorch's logits, one row per token


def run_parity(ckpt, onnx_dir: Path, *, corpus: Optional[Path] = None, sample: Optional[int] = None,
               thresholds: Optional[dict] = None, progress: Callable[[str], None] = lambda m: None,
               decode: str = "argmax", tie_margin: float = TIE_MARGIN,
               strategies: tuple[str, ...] = STRATEGIES, optimization: str = "auto") -> dict:
    """Run the suite; returns {'passed', 'failures', 'summary', 'markdown', ...} (see module doc).

    `decode="viterbi"` also compares the runtime's Viterbi entities with PyTorch's logits decoded the same way.
    A token flip is decisive when PyTorch's logit for its own label beats its logit for the int8 label by at
    least `tie_margin`; a text differs decisively when its `simple` entities differ and it holds such a flip.
    `strategies`: the aggregation strategies compared with the transformers pipeline (`simple` always).
    `optimization`: the graph optimization level the int8 model is loaded with (`NER.load`'s).
    """
    th = {**THRESHOLDS, **(thresholds or {})}
    onnx_dir = Path(onnx_dir)
    read_manifest(onnx_dir)  # a folder koner cannot load fails here, before any model runs
    rows = load_corpus(corpus, sample)
    texts = [r["text"] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        rt8 = NER.load(onnx_dir, threads=1, workers=1, optimization=optimization)
        rt32 = NER.load(_fp32_folder(ckpt, onnx_dir, Path(tmp)), threads=1, workers=1, model_file=MODEL_FP32_FILE)
        if list(rt8.labels) != list(ckpt.labels):
            progress("warning: the manifest's labels differ from the checkpoint's")
        progress(f"tokenization on {len(texts)} texts")
        encoded = [rt8.tokenizer.encode(t) for t in texts]
        tok_bad = _tokenization(ckpt, rows, encoded)
        progress("logits and token labels")
        lab = _token_labels(ckpt, rows, encoded, rt8, rt32)
        decisive = _decisive_texts(rows, encoded, lab, rt8, tie_margin)
        progress("entities against the transformers pipeline, five strategies")
        fit_idx = [k for k, f in enumerate(lab.fits) if f and texts[k].strip()]
        per_strategy, pt_simple, rt8_simple, pipeline_inputs = _entity_lists(
            ckpt, [texts[k] for k in fit_idx], rt8, rt32, th, tuple(dict.fromkeys(("simple",) + tuple(strategies))),
            progress)
        viterbi = None
        if decode == "viterbi":
            progress("Viterbi entities against PyTorch's logits decoded the same way")
            viterbi = _viterbi_lists(rows, encoded, lab.reference, fit_idx, rt8)
    gold = _gold([rows[k] for k in fit_idx], pt_simple, rt8_simple) if pt_simple is not None else None
    summary = {
        "texts": len(rows), "texts_within_max_length": len(fit_idx), "tokens": lab.tokens, "int8_path": int8_path(),
        "categories": dict(sorted(Counter(r["category"] for r in rows).items())),
        "tokenization_identical": round(1 - len(tok_bad) / max(1, len(rows)), 4),
        "fp32_max_abs_logit_diff": float(f"{lab.max_diff32:.2e}"),
        "fp32_token_agreement": round(lab.agree32 / max(1, lab.tokens), 5),
        "int8_token_agreement": round(lab.agree8 / max(1, lab.tokens), 5),
        "int8_flips": {"tokens": len(lab.flips), "texts": len({f["id"] for f in lab.flips}),
                       "max_pytorch_logit_margin": max((f["pytorch_logit_margin"] for f in lab.flips), default=None),
                       "decisive_tokens": sum(f["pytorch_logit_margin"] >= tie_margin for f in lab.flips),
                       "near_tie_tokens": sum(f["pytorch_logit_margin"] < tie_margin for f in lab.flips),
                       "tie_margin": tie_margin},
        "int8_decisive_texts": round(len(decisive) / max(1, len(rows)), 5),
        "int8_decisive_text_ids": decisive[:50],
        "pytorch_near_ties": {"logit_margin": NEAR_TIE, "texts": lab.near_tie_texts},
        "strategies": per_strategy,
        "gold": gold,
    }
    if viterbi is not None:
        summary["viterbi"] = viterbi
    if pipeline_inputs:
        summary["pipeline_inputs"] = pipeline_inputs
    failures = _failures(summary, tok_bad, th)
    simple = per_strategy["simple"].get("int8_identical")
    summary["targets"] = {"int8_simple_identical": {"target": TARGETS["int8_simple_identical"], "value": simple,
                                                    "met": simple is not None and
                                                    simple >= TARGETS["int8_simple_identical"]}}
    report = {"passed": not failures, "failures": failures, "summary": summary, "thresholds": th,
              "worst_disagreements": lab.flips[:20], "tokenization_mismatches": tok_bad[:50],
              "decisive_flips": [f for f in lab.flips if f["pytorch_logit_margin"] >= tie_margin][:50]}
    report["markdown"] = _markdown(report)
    return report


def not_run(stage: str, exc: Exception) -> dict:
    """The report of a suite that failed at `stage` before it could measure anything: not passed, and why."""
    failure = f"the parity suite could not run: it failed at \"{stage}\" ({one_line(exc)})"
    summary = {"could_not_run": {"stage": stage, "error": one_line(exc)}}
    markdown = (f"## koner parity: COULD NOT RUN\n\n{failure}. Nothing was measured; run "
                "`koner parity SOURCE MODEL_DIR` again once the cause is fixed.\n")
    return {"passed": False, "failures": [failure], "summary": summary, "markdown": markdown}


def run_or_report(ckpt, onnx_dir: Path, *, progress: Callable[[str], None] = lambda m: None,
                  **options) -> tuple[dict, Optional[Exception]]:
    """`run_parity`'s report and None; or, when the suite fails unexpectedly, `not_run`'s report (naming the stage
    it stopped at) and the failure."""
    stage = ["loading the model and its fp32 twin"]

    def tracked(msg: str) -> None:
        if not msg.startswith("warning:"):
            stage[0] = msg
        progress(msg)

    try:
        return run_parity(ckpt, onnx_dir, progress=tracked, **options), None
    except Exception as exc:
        return not_run(stage[0], exc), exc


def _fp32_folder(ckpt, onnx_dir: Path, tmp: Path) -> Path:
    """A folder holding the fp32 model: the export's own --keep-fp32 file, or one exported into `tmp` now."""
    if (onnx_dir / MODEL_FP32_FILE).is_file():
        return onnx_dir
    from .onnx_export import export

    for name in (MANIFEST_FILE, TOKENIZER_FILE):
        (tmp / name).write_bytes((onnx_dir / name).read_bytes())
    export(ckpt.model, ckpt.tokenizer, tmp / MODEL_FP32_FILE)
    return tmp


def _tokenization(ckpt, rows: list[dict], encoded: list) -> list[str]:
    """Ids of the texts whose token ids or offsets differ from the transformers tokenizer's."""
    bad = []
    for r, mine in zip(rows, encoded):
        ref = ckpt.tokenizer(r["text"], return_offsets_mapping=True, add_special_tokens=True)
        if list(mine.ids) != list(ref["input_ids"]) or [tuple(o) for o in mine.offsets] != \
                [tuple(o) for o in ref["offset_mapping"]]:
            bad.append(r["id"])
    return bad


def _token_labels(ckpt, rows: list[dict], encoded: list, rt8: NER, rt32: NER) -> _Labels:
    """Logits and token labels of PyTorch, fp32 and int8 over the runtime's own windows, text by text."""
    labels = rt8.labels
    lab = _Labels()
    for r, toks in zip(rows, encoded):
        lab.fits.append(len(toks.ids) <= rt8.max_length)
        plan = rt8.windows(toks)
        ref_l, l32, l8 = [], [], []
        for w in plan:
            ids = w.ids[None, :]
            mask = np.ones_like(ids)
            ref_l.append(torch_logits(ckpt.model, ids, mask)[0])
            l32.append(rt32.session.run(ids, mask)[0])
            l8.append(rt8.session.run(ids, mask)[0])
        ref = win.stitch(len(toks.ids), plan, ref_l)
        lab.reference.append(ref)
        a32 = win.stitch(len(toks.ids), plan, l32)
        a8 = win.stitch(len(toks.ids), plan, l8)
        keep = ~toks.special
        lab.max_diff32 = max(lab.max_diff32, float(np.abs(a32 - ref).max()))
        pr, p32, p8 = ref.argmax(-1), a32.argmax(-1), a8.argmax(-1)
        lab.agree32 += int((pr == p32)[keep].sum())
        lab.agree8 += int((pr == p8)[keep].sum())
        lab.tokens += int(keep.sum())
        top2 = np.sort(ref[keep], -1)[:, -2:]
        lab.near_tie_texts += bool(top2.size and (top2[:, 1] - top2[:, 0]).min() < NEAR_TIE)
        pref, p8s = softmax(ref), softmax(a8)
        t = r["text"]
        for i in np.flatnonzero(keep & (pr != p8)):
            lab.flips.append({"id": r["id"], "text": t if len(t) <= 200 else t[:200] + "…", "token": toks.strings[i],
                              "start": toks.offsets[i][0], "end": toks.offsets[i][1],
                              "pytorch": labels[pr[i]], "pytorch_p": round(float(pref[i, pr[i]]), 4),
                              "int8": labels[p8[i]], "int8_p": round(float(p8s[i, p8[i]]), 4),
                              "pytorch_margin": round(float(pref[i, pr[i]] - pref[i, p8[i]]), 4),
                              "pytorch_logit_margin": round(float(ref[i, pr[i]] - ref[i, p8[i]]), 4)})
    lab.flips.sort(key=lambda f: -f["pytorch_margin"])
    return lab


def _entity_lists(ckpt, texts: list[str], rt8: NER, rt32: NER, th: dict, strategies: tuple[str, ...] = STRATEGIES,
                  progress: Callable[[str], None] = lambda m: None):
    """Per strategy: fp32 and int8 entity lists against the transformers pipeline (texts within the model's
    length: the pipeline truncates); also PyTorch's and int8's `simple` lists, for the gold stage (None when the
    pipeline could not run `simple`), and what was left out of the pipeline's feed (None when nothing was).

    The pipeline is fed only the inputs the model's forward takes (see `pipeline_tokenizer`); a strategy the
    pipeline still cannot run is recorded as {"could_not_run": reason} instead of failing the suite."""
    from transformers import pipeline

    tokenizer, dropped = pipeline_tokenizer(ckpt.model, ckpt.tokenizer)
    inputs = None
    if dropped:
        fed = list(tokenizer.model_input_names)
        inputs = {"left_out": dropped, "fed": fed, "note": _dropped_note(ckpt.model, dropped, fed)}
        progress(f"warning: {inputs['note']}")
    per_strategy = {}
    pt_simple = rt8_simple = None
    for s in strategies:
        try:
            pipe = pipeline("token-classification", model=ckpt.model, tokenizer=tokenizer, aggregation_strategy=s,
                            device=-1)
            refs = [pipe(t) for t in texts]
        except Exception as exc:  # the reference itself fails: say so in the report, keep the model
            reason = one_line(exc)
            progress(f"warning: the transformers pipeline could not run '{s}' ({reason})")
            per_strategy[s] = {"could_not_run": reason}
            continue
        d32 = [[e.to_dict() for e in g] for g in rt32.batch(texts, batch_size=1, aggregation=s)]
        d8 = [[e.to_dict() for e in g] for g in rt8.batch(texts, batch_size=1, aggregation=s)]
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
    return per_strategy, pt_simple, rt8_simple, inputs


def _dropped_note(model, dropped: list[str], fed: list[str]) -> str:
    """What the report says when the pipeline's feed left out inputs the model does not take."""
    return (f"the transformers pipeline cannot run this checkpoint as saved: its tokenizer returns "
            f"{', '.join(dropped)}, which {type(model).__name__}.forward() does not take; its entities were "
            f"compared with the pipeline fed only {', '.join(fed)}, as koner feeds its graph")


def _decisive_texts(rows: list[dict], encoded: list, lab: "_Labels", rt8: NER, tie_margin: float) -> list[str]:
    """Ids of the texts whose int8 `simple` entities differ from PyTorch's and that hold a decisive flip."""
    decisive_ids = {f["id"] for f in lab.flips if f["pytorch_logit_margin"] >= tie_margin}
    out = []
    for r, toks, ref in zip(rows, encoded, lab.reference):
        if r["id"] not in decisive_ids or not r["text"].strip():
            continue
        want = rt8.aggregator("simple").entities(r["text"], toks, ref)
        got = rt8(r["text"], aggregation="simple")
        if [(e.start, e.end, e.label) for e in want] != [(e.start, e.end, e.label) for e in got]:
            out.append(r["id"])
    return out


def _viterbi_lists(rows: list[dict], encoded: list, reference: list, fit_idx: list[int], rt8: NER) -> dict:
    """int8 `simple` entities with Viterbi decoding against PyTorch's logits through the same decoder and grouping."""
    viterbi = rt8.aggregator("simple", "viterbi")
    same, refs, gots = 0, [], []
    for k in fit_idx:
        text, toks = rows[k]["text"], encoded[k]
        ref = [e.to_dict() for e in viterbi.entities(text, toks, reference[k])]
        got = [e.to_dict() for e in rt8(text, aggregation="simple", decode="viterbi")]
        same += _same(ref, got, None)
        refs.append(ref)
        gots.append(got)
    out = {"int8_identical": round(same / max(1, len(fit_idx)), 4),
           "int8_vs_pytorch": _prf([_spans(a) for a in refs], [_spans(b) for b in gots])}
    gold = _gold([rows[k] for k in fit_idx], refs, gots)
    if gold:
        out["gold"] = gold
    return out


def _gold(rows: list[dict], pt_simple: list, rt8_simple: list) -> Optional[dict]:
    """Entity F1 of PyTorch and of int8 against the gold spans of the rows that have them."""
    idx = [j for j, r in enumerate(rows) if r.get("gold") is not None]
    if not idx:
        return None
    g = [{tuple(x) for x in rows[j]["gold"]} for j in idx]
    f_pt = _prf(g, [_spans(pt_simple[j]) for j in idx])["f1"]
    f_rt = _prf(g, [_spans(rt8_simple[j]) for j in idx])["f1"]
    return {"sentences": len(idx), "pytorch_f1": f_pt, "int8_f1": f_rt, "drop": round(f_pt - f_rt, 4)}


def _failures(summary: dict, tok_bad: list, th: dict) -> list[str]:
    """One line for each threshold the summary misses."""
    per_strategy, gold = summary["strategies"], summary["gold"]
    failures = []
    if summary["tokenization_identical"] < th["tokenization_identical"]:
        failures.append(f"tokenization differs on {len(tok_bad)} texts (e.g. {tok_bad[:3]})")
    for s, v in per_strategy.items():
        if "could_not_run" in v:
            failures.append(f"'{s}' entities could not be compared: the transformers pipeline could not run "
                            f"({v['could_not_run']})")
        elif v["fp32_identical"] < th["fp32_entities_identical"]:
            failures.append(f"fp32 '{s}' entities identical on {v['fp32_identical']:.2%} of texts "
                            f"(< {th['fp32_entities_identical']:.2%}; max score diff {v['fp32_max_score_diff']})")
    if summary["int8_token_agreement"] < th["int8_token_agreement"]:
        failures.append(f"int8 token labels agree with PyTorch on {summary['int8_token_agreement']:.2%} "
                        f"(< {th['int8_token_agreement']:.2%})")
    if summary["int8_decisive_texts"] > th["int8_decisive_texts"]:
        failures.append(f"int8 'simple' entities differ decisively (a flip PyTorch was sure of by ≥ "
                        f"{summary['int8_flips']['tie_margin']} logits) on {summary['int8_decisive_texts']:.2%} of "
                        f"texts (> {th['int8_decisive_texts']:.2%}; e.g. {summary['int8_decisive_text_ids'][:3]})")
    if gold and gold["drop"] > th["gold_f1_drop"]:
        failures.append(f"int8 gold F1 {gold['int8_f1']:.4f} is {gold['drop'] * 100:.2f} points below "
                        f"PyTorch's {gold['pytorch_f1']:.4f} (> {th['gold_f1_drop'] * 100:.1f})")
    return failures


def _markdown(rep: dict) -> str:
    s = rep["summary"]
    lines = [f"## koner parity: {'PASSED' if rep['passed'] else 'FAILED'}", "",
             f"{s['texts']} texts ({', '.join(f'{k} {v}' for k, v in s['categories'].items())}), {s['tokens']} tokens; "
             f"int8 run on a CPU whose int8 path is {s.get('int8_path', 'unknown')}", ""]
    if s.get("pipeline_inputs"):
        lines += [f"Note: {s['pipeline_inputs']['note']}.", ""]
    lines += ["| check | value |", "|---|---|",
              f"| tokenization identical | {s['tokenization_identical']:.2%} |",
              f"| fp32 max abs logit diff | {s['fp32_max_abs_logit_diff']:.1e} |",
              f"| fp32 token-label agreement | {s['fp32_token_agreement']:.3%} |",
              f"| int8 token-label agreement | {s['int8_token_agreement']:.3%} |"]
    fl, nt = s["int8_flips"], s["pytorch_near_ties"]
    lines.append(f"| int8 label flips: tokens / texts (largest PyTorch logit margin among them) | "
                 f"{fl['tokens']} / {fl['texts']} ({fl['max_pytorch_logit_margin']}) |")
    lines.append(f"| flips PyTorch was sure of (logit margin ≥ {fl['tie_margin']}: decisive) / near-tie flips | "
                 f"{fl['decisive_tokens']} / {fl['near_tie_tokens']} |")
    lines.append(f"| texts whose int8 `simple` entities differ decisively (gate ≤ "
                 f"{rep['thresholds']['int8_decisive_texts']:.1%}) | {s['int8_decisive_texts']:.2%} |")
    lines.append(f"| texts where PyTorch's two best logits are within {nt['logit_margin']} (near-ties) | "
                 f"{nt['texts']} ({nt['texts'] / max(1, s['texts']):.2%}) |")
    t = s["targets"]["int8_simple_identical"]
    lines.append(f"| int8 `simple` entities identical (target {t['target']:.0%}, reported, not a gate) | "
                 + (f"{t['value']:.2%} ({'met' if t['met'] else 'not met'}) |" if t["value"] is not None else
                    "could not run |"))
    for k, v in s["strategies"].items():
        if "could_not_run" in v:
            lines.append(f"| `{k}` entities identical, fp32 / int8 | could not run: the transformers pipeline failed "
                         f"({v['could_not_run'].replace('|', '/')}) |")
            continue
        lines.append(f"| `{k}` entities identical, fp32 / int8 | {v['fp32_identical']:.2%} / {v['int8_identical']:.2%} "
                     f"(int8 F1 vs PyTorch {v['int8_vs_pytorch']['f1']:.4f}) |")
    if s["gold"]:
        g = s["gold"]
        lines.append(f"| gold F1 PyTorch / int8 ({g['sentences']} sentences) | {g['pytorch_f1']:.4f} / "
                     f"{g['int8_f1']:.4f} (drop {g['drop'] * 100:.2f} pt) |")
    if s.get("viterbi"):
        v = s["viterbi"]
        lines.append(f"| Viterbi `simple` entities identical to PyTorch's logits decoded alike | "
                     f"{v['int8_identical']:.2%} (F1 {v['int8_vs_pytorch']['f1']:.4f}) |")
        if v.get("gold"):
            lines.append(f"| Viterbi gold F1 PyTorch / int8 | {v['gold']['pytorch_f1']:.4f} / {v['gold']['int8_f1']:.4f} |")
    if rep["failures"]:
        lines += ["", "Failures:"] + [f"- {f}" for f in rep["failures"]]
    if rep["decisive_flips"]:
        lines += ["", "Decisive int8 label flips (PyTorch label p / int8 label p, PyTorch's logit margin between the two):"]
        for f in rep["decisive_flips"][:10]:
            lines.append(f"- {f['id']} `{f['token']}` [{f['start']}:{f['end']}] in “{f['text'][:80]}”: {f['pytorch']} "
                         f"{f['pytorch_p']} / {f['int8']} {f['int8_p']} (logit margin {f['pytorch_logit_margin']})")
    if rep["worst_disagreements"]:
        lines += ["", "Worst int8 label flips (PyTorch label p / int8 label p, PyTorch's logit margin between the two):"]
        for f in rep["worst_disagreements"][:5]:
            lines.append(f"- {f['id']} `{f['token']}` [{f['start']}:{f['end']}]: {f['pytorch']} {f['pytorch_p']} / "
                         f"{f['int8']} {f['int8_p']} (logit margin {f['pytorch_logit_margin']})")
    return "\n".join(lines) + "\n"
