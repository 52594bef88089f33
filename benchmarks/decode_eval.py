"""argmax vs BIO-constrained Viterbi decoding: held-out entity P/R/F1 per type, int8 and fp32, and the cost.

Gold: the stand-in's 500 held-out konec sentences (in the parity corpus, never trained on). Two scorings
of exact character spans: "pipeline" — the entities `simple` aggregation returns (a stray `I-` opens an
entity, as in the transformers pipeline); "strict" — seqeval's strict IOB2 chunking of the token labels
(an entity starts at `B-` and takes the `I-` of its type right after; a stray `I-` is no entity). Viterbi
output is valid BIO, so its two scorings agree. Cost: p50 of one call, argmax vs viterbi, on a ~50-token
sentence and a 512-token window, 1 thread.

Usage: python benchmarks/decode_eval.py [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]

from common import prf, save_results  # noqa: E402
from koner import NER  # noqa: E402
from koner_export.corpus import PARITY_CORPUS, read_jsonl  # noqa: E402

TYPES_SHOWN = ("PS", "LC", "OG", "DT", "QT", "CV", "TI", "AF", "EV", "TM", "AM")


def strict_spans(token_ents) -> set:
    """Strict IOB2 chunks of `none` output (one entity per labelled token, with its index)."""
    spans, cur = set(), None
    for e in token_ents:
        bi, tag = e.label.split("-", 1)
        if bi == "I" and cur and cur[2] == tag and e.index == cur[3] + 1:
            cur = (cur[0], e.end, tag, e.index)
            continue
        if cur:
            spans.add(cur[:3])
        cur = (e.start, e.end, tag, e.index) if bi == "B" else None
    if cur:
        spans.add(cur[:3])
    return spans


def scores(ner: NER, texts: list[str], gold: list[set], decode: str) -> dict:
    pipe = [{(e.start, e.end, e.label) for e in x} for x in ner.batch(texts, decode=decode)]
    strict = [strict_spans(x) for x in ner.batch(texts, aggregation="none", decode=decode)]
    out = {"pipeline": prf(gold, pipe), "strict": prf(gold, strict), "per_type": {}}
    for tag in TYPES_SHOWN:
        out["per_type"][tag] = {"pipeline": prf(gold, pipe, tag)["f1"], "strict": prf(gold, strict, tag)["f1"]}
    return out


def cost(ner: NER, text: str, reps: int) -> dict:
    out = {}
    for decode in ("argmax", "viterbi", "argmax", "viterbi"):
        for _ in range(5):
            ner(text, decode=decode)
        times = []
        for _ in range(reps):
            s = time.perf_counter()
            ner(text, decode=decode)
            times.append(time.perf_counter() - s)
        out.setdefault(decode, []).append(1000 * statistics.median(times))
    return {k: round(min(v), 3) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    rows = [r for r in read_jsonl(PARITY_CORPUS) if r["category"] == "heldout"]
    texts = [r["text"] for r in rows]
    gold = [{tuple(g) for g in r["gold"]} for r in rows]
    result = {"sentences": len(rows), "gold_entities": sum(map(len, gold)), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        from koner_export.export import export_model

        export_model(str(ROOT / "standin" / "model"), Path(tmp) / "m", keep_fp32=True, parity=False,
                     progress=lambda m: None)
        models = {"int8": NER.load(workers=1, threads=1),
                  "fp32": NER.load(Path(tmp) / "m", model_file="model-fp32.onnx", workers=1, threads=1)}
        for name, ner in models.items():
            result["models"][name] = {d: scores(ner, texts, gold, d) for d in ("argmax", "viterbi")}
    ner = models["int8"]
    sentence = "2023년 3월 15일 오후 3시에 서울 서초구 삼성전자 본사에서 이재용 회장이 기자회견을 열고 " \
               "반도체 투자 계획을 발표했으며, 이 자리에는 100여 명의 기자가 참석했다."
    window = " ".join(texts)[:5000]
    while len(ner.tokenize(window).ids) > 512:
        window = window[:-20]
    result["cost_ms"] = {"sentence": cost(ner, sentence, 300), "window_512": cost(ner, window, 40),
                         "tokens": [len(ner.tokenize(sentence).ids), len(ner.tokenize(window).ids)]}
    lines = [f"Held-out konec, {len(rows)} sentences, {result['gold_entities']} gold entities; exact spans.", "",
             "| model | decode | pipeline-style P / R / F1 | strict P / R / F1 |", "|---|---|---|---|"]
    for name, m in result["models"].items():
        for d, r in m.items():
            a, b = r["pipeline"], r["strict"]
            lines.append(f"| {name} | {d} | {a['p']:.3f} / {a['r']:.3f} / **{a['f1']:.3f}** | "
                         f"{b['p']:.3f} / {b['r']:.3f} / {b['f1']:.3f} |")
    lines += ["", "Per type, int8, pipeline-style F1 (strict in brackets):", "",
              "| type | argmax | viterbi |", "|---|---|---|"]
    for tag in TYPES_SHOWN:
        a = result["models"]["int8"]["argmax"]["per_type"][tag]
        v = result["models"]["int8"]["viterbi"]["per_type"][tag]
        lines.append(f"| {tag} | {a['pipeline']:.3f} ({a['strict']:.3f}) | {v['pipeline']:.3f} ({v['strict']:.3f}) |")
    c = result["cost_ms"]
    lines += ["", f"Cost, p50 of one call, 1 thread: {c['tokens'][0]}-token sentence {c['sentence']['argmax']} → "
                  f"{c['sentence']['viterbi']} ms; {c['tokens'][1]}-token window {c['window_512']['argmax']} → "
                  f"{c['window_512']['viterbi']} ms."]
    save_results(args.out, "decode", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
