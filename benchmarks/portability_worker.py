"""One CPU's answers for cpu_portability.py: runs under qemu user-mode with only koner's runtime.

Reads JSONL texts (`id`, `text`), skips ids already in OUT (so a stopped run resumes), and appends one
line per text: its int8 token labels (argmax of the logits rows koner stitches from its overlapping
windows, special tokens left out) and its `simple` entities with scores. Flushes after every line.

Usage: python portability_worker.py MODEL_DIR CORPUS.jsonl [CORPUS2.jsonl ...] --out OUT.jsonl [--variant NAME]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("corpora", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runtime", help="folder holding the koner package (default: ../runtime beside this script)")
    ap.add_argument("--variant", help="what was changed in the model, recorded with the answers (e.g. ulp+1)")
    args = ap.parse_args()
    sys.path.insert(0, args.runtime or str(Path(__file__).resolve().parents[1] / "runtime"))
    import numpy as np

    from koner import NER
    from koner.cpu import int8_path

    ner = NER.load(args.model, threads=1, workers=1)
    model = ner.manifest.raw["files"][ner.manifest.data_file or ner.manifest.model_file]["sha256"]
    out = Path(args.out)
    done = set()
    if out.exists():
        for line in out.read_text("utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut by a stop: answered again below
            if row.get("id") == "#cpu" and (row.get("model"), row.get("variant")) != (model, args.variant):
                raise SystemExit(f"{out}: answers of another model; move the file away to start over")
            done.add(row.get("id"))
        with open(out, "rb+") as f:  # drop a partial last line
            data = f.read()
            f.truncate(data.rfind(b"\n") + 1 if data.rfind(b"\n") >= 0 else 0)
    with open(out, "a", encoding="utf-8") as f:
        if not done:
            meta = {"id": "#cpu", "int8_path": int8_path(), "model": model, "pid": os.getpid()}
            if args.variant:
                meta["variant"] = args.variant
            f.write(json.dumps(meta) + "\n")
        for corpus in args.corpora:
            for line in Path(corpus).read_text("utf-8").splitlines():
                row = json.loads(line)
                key = f"{Path(corpus).stem}:{row['id']}"
                if key in done:
                    continue
                labels = token_rows(ner, row["text"], lambda ids: ner.session.run(ids, np.ones_like(ids))[0])
                labels = labels.argmax(-1)[1:-1].tolist()
                ents = [[e.label, e.start, e.end, round(e.score, 5)] for e in ner(row["text"])]
                f.write(json.dumps({"id": key, "labels": labels, "entities": ents}, ensure_ascii=False) + "\n")
                f.flush()


def token_rows(ner, text: str, run):
    """One logits row per token of `text`, from koner's windows (`run`: ids [1, n] -> logits [n, labels])."""
    from koner import windows

    tokens = ner.tokenizer.encode(text)
    plan = ner.windows(tokens)
    return windows.stitch(len(tokens.ids), plan, [run(w.ids[None, :]) for w in plan])


if __name__ == "__main__":
    main()
