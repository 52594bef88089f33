"""Regenerate tokenizer-families-golden.json: the transformers pipeline's answers for a byte-level BPE and a
Unigram tokenizer (the tiny RoBERTa and XLM-RoBERTa of tests/support/tiny_models.py), on fixed logits.

For each family: its tokenizer.json, and per text the tokens (ids, offsets), the tiny model's PyTorch logits
and the entity dicts of `pipeline("token-classification", aggregation_strategy=S)` for all five strategies.
The lean tests tokenize the texts with koner's tokenizer, feed the logits to koner's aggregation (no torch, no
transformers, no model run) and expect the pipeline's dicts.

Run from a checkout with the export extra: python tests/support/golden/make_tokenizer_families_golden.py
"""
import base64
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import tiny_models  # noqa: E402

OUT = HERE / "tokenizer-families-golden.json"
STRATEGIES = ("none", "simple", "first", "average", "max")
FAMILIES = {"byte-level BPE": "roberta", "Unigram": "xlm-roberta"}


def texts() -> list[str]:
    """40 parity-corpus texts of every category (short commands to paragraphs, quotes, emoji, Latin)."""
    rows = [json.loads(line) for line in tiny_models.CORPUS.read_text("utf-8").splitlines()]
    by_kind: dict[str, list[str]] = {}
    for r in rows:
        by_kind.setdefault(r["id"].split("-")[0], []).append(r["text"])
    out: list[str] = []
    while len(out) < 40 and any(by_kind.values()):
        for kind in sorted(by_kind):
            if by_kind[kind] and len(out) < 40:
                t = by_kind[kind].pop(0)
                if len(t) <= 400:
                    out.append(t)
    return out


def main() -> None:
    doc = {"families": {}}
    for family, arch in FAMILIES.items():
        with tempfile.TemporaryDirectory() as tmp:
            folder = tiny_models.build(arch, Path(tmp) / arch)
            tok = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForTokenClassification.from_pretrained(folder).eval()
            labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
            rows = []
            pipes = {s: pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy=s,
                                 device=-1) for s in STRATEGIES}
            for text in texts():
                enc = tok(text, return_offsets_mapping=True, return_tensors="pt")
                with torch.no_grad():
                    logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    answers = {s: [{k: (float(v) if k == "score" else (int(v) if k in ("start", "end", "index")
                                                                         else v)) for k, v in e.items()}
                                   for e in p(text)] for s, p in pipes.items()}
                rows.append({"text": text, "ids": enc["input_ids"][0].tolist(),
                             "offsets": [list(map(int, o)) for o in enc["offset_mapping"][0].tolist()],
                             "logits": base64.b64encode(logits.numpy().astype(np.float32).tobytes()).decode(),
                             "entities": answers})
            doc["families"][family] = {"architecture": arch, "labels": labels, "unk_id": tok.unk_token_id,
                                       "tokenizer": json.loads(tok.backend_tokenizer.to_str()), "texts": rows}
    OUT.write_text(json.dumps(doc, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
