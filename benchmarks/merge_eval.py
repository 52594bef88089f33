"""Does merging split same-type spans help? Exact-span entity P/R/F1 per type on the held-out gold set.

The 500 held-out konec sentences of the parity corpus (gold spans, never trained on) through the
bundled model, `simple` aggregation, without merging and with merging each type alone, across
whitespace ("space") and also `·` and `-` ("punct"). Writes benchmarks/results/merge-DATE.{json,md}.

Usage: python benchmarks/merge_eval.py [--model DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]

from common import prf, save_results  # noqa: E402
from koner import NER  # noqa: E402
from koner.spans import MERGE_TAGS  # noqa: E402


def merged_types() -> frozenset:
    return MERGE_TAGS
from koner_export.corpus import PARITY_CORPUS, read_jsonl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    rows = [r for r in read_jsonl(PARITY_CORPUS) if r["category"] == "heldout"]
    texts = [r["text"] for r in rows]
    gold = [{tuple(g) for g in r["gold"]} for r in rows]
    ner = NER.load(args.model)
    spans = lambda ents: {(e.start, e.end, e.label) for e in ents}  # noqa: E731
    base = [spans(e) for e in ner.batch(texts)]
    counts = Counter(t for g in gold for _, _, t in g)
    result = {"sentences": len(rows), "all": {"none": prf(gold, base)}, "tags": {}}
    for across in ("space", "punct"):
        merged_all = NER.load(args.model, merge=list(ner.entity_types), merge_across=across)
        result["all"][across] = prf(gold, [spans(e) for e in merged_all.batch(texts)])
    for across in ("space", "punct"):
        default = NER.load(args.model, merge=True, merge_across=across)
        result["all"][f"merge=True, {across}"] = prf(gold, [spans(e) for e in default.batch(texts)])
    for tag in ner.entity_types:
        row = {"gold": counts.get(tag, 0), "none": prf(gold, base, tag)}
        for across in ("space", "punct"):
            m = NER.load(args.model, merge=[tag], merge_across=across)
            row[across] = prf(gold, [spans(e) for e in m.batch(texts)], tag)
        result["tags"][tag] = row
    helps = [t for t, r in result["tags"].items() if r["space"]["f1"] > r["none"]["f1"]]
    result["merge_helps_space"] = helps
    result["merge_helps_punct"] = [t for t, r in result["tags"].items() if r["punct"]["f1"] > r["none"]["f1"]]
    lines = [f"Held-out konec, {len(rows)} sentences, exact-span F1 (`simple`):", "",
             "| type | gold | no merge | merge across spaces | merge across spaces, `·`, `-` |", "|---|---|---|---|---|"]
    for tag, r in sorted(result["tags"].items(), key=lambda kv: -kv[1]["gold"]):
        lines.append(f"| {tag} | {r['gold']} | {r['none']['f1']:.4f} | {r['space']['f1']:.4f} | {r['punct']['f1']:.4f} |")
    a = result["all"]
    lines.append(f"| all types merged | {sum(counts.values())} | {a['none']['f1']:.4f} | {a['space']['f1']:.4f} | "
                 f"{a['punct']['f1']:.4f} |")
    lines.append(f"| `merge=True` ({', '.join(sorted(merged_types()))}) | {sum(counts.values())} | {a['none']['f1']:.4f} | "
                 f"{a['merge=True, space']['f1']:.4f} | {a['merge=True, punct']['f1']:.4f} |")
    lines += ["", f"Merging across spaces raises F1 for: {', '.join(helps) or 'none'}."]
    save_results(args.out, "merge", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
