"""Entity-level precision / recall / F1 over BIO label sequences, seqeval-style.

Two chunkings, both reported:
  strict   seqeval's mode="strict" with the IOB2 scheme: an entity starts at B-X and runs over the
           I-X that follow; an I-X with no B-X before it is not an entity (the figure to compare
           with published model cards).
  lenient  seqeval's default: an I-X that does not continue an entity of its tag opens one, as the
           transformers pipeline's grouping does, so stray I- fragments count as predicted entities.
"""
from __future__ import annotations

from collections import Counter


def bio_spans(labels: list[str], strict: bool = False) -> set[tuple[int, int, str]]:
    """(start, end, tag) chunks of a BIO sequence; `strict` drops entities that do not start with B-."""
    spans = set()
    start, tag = None, None
    for i, lab in enumerate(list(labels) + ["O"]):
        prefix, _, t = lab.partition("-")
        continues = prefix == "I" and tag == t
        if start is not None and not continues:
            spans.add((start, i, tag))
            start, tag = None, None
        if (prefix == "B" or (prefix == "I" and not strict)) and not continues:
            start, tag = i, t
    return spans


def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": n_gold}


def _counts(gold: list[list[str]], pred: list[list[str]], strict: bool) -> dict:
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        gs, ps = bio_spans(g, strict), bio_spans(p, strict)
        n_gold.update(s[2] for s in gs)
        n_pred.update(s[2] for s in ps)
        tp.update(s[2] for s in gs & ps)
    tags = sorted(set(n_gold) | set(n_pred))
    return {"micro": _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values())),
            "per_tag": {t: _prf(tp[t], n_pred[t], n_gold[t]) for t in tags}}


def entity_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Strict micro and per-tag entity P/R/F1, the lenient ones under "lenient", and token accuracy."""
    if any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted sequences differ in length")
    correct = sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p))
    tokens = sum(len(g) for g in gold)
    return {
        **_counts(gold, pred, strict=True),
        "lenient": _counts(gold, pred, strict=False),
        "token_accuracy": round(correct / tokens, 4) if tokens else 0.0,
        "sentences": len(gold),
    }
