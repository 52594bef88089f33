"""Entity-level precision / recall / F1 over BIO label sequences (seqeval's default chunking)."""
from __future__ import annotations

from collections import Counter


def bio_spans(labels: list[str]) -> set[tuple[int, int, str]]:
    """(start, end, tag) chunks: a B- opens one, an I- continues one of the same tag or opens one."""
    spans = set()
    start, tag = None, None
    for i, lab in enumerate(list(labels) + ["O"]):
        prefix, _, t = lab.partition("-")
        continues = prefix == "I" and tag == t
        if start is not None and not continues:
            spans.add((start, i, tag))
            start, tag = None, None
        if prefix in ("B", "I") and not continues:
            start, tag = i, t
    return spans


def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": n_gold}


def entity_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Micro and per-tag entity P/R/F1 plus token accuracy for aligned label sequences."""
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    correct = tokens = 0
    for g, p in zip(gold, pred):
        if len(g) != len(p):
            raise ValueError("gold and predicted sequences differ in length")
        gs, ps = bio_spans(g), bio_spans(p)
        for s in gs:
            n_gold[s[2]] += 1
        for s in ps:
            n_pred[s[2]] += 1
        for s in gs & ps:
            tp[s[2]] += 1
        correct += sum(a == b for a, b in zip(g, p))
        tokens += len(g)
    tags = sorted(set(n_gold) | set(n_pred))
    return {
        "micro": _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values())),
        "per_tag": {t: _prf(tp[t], n_pred[t], n_gold[t]) for t in tags},
        "token_accuracy": round(correct / tokens, 4) if tokens else 0.0,
        "sentences": len(gold),
    }
