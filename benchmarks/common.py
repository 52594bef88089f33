"""What the benchmark scripts share: exact-span P/R/F1 and writing a run's results."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional


def prf(gold: list[set], pred: list[set], tag: Optional[str] = None) -> dict:
    """Exact-span precision, recall and F1 over (start, end, type) sets, of one type or all."""
    keep = (lambda s: s) if tag is None else (lambda s: {x for x in s if x[2] == tag})
    tp = sum(len(keep(g) & keep(p)) for g, p in zip(gold, pred))
    n_gold, n_pred = sum(len(keep(g)) for g in gold), sum(len(keep(p)) for p in pred)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "gold": n_gold}


def save_results(out: Path, prefix: str, result: dict, markdown: str) -> Path:
    """Print the table and write `{prefix}-{date}.json` and `.md` into `out`; returns the JSON's path."""
    print(markdown)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out / f"{prefix}-{stamp}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    path.with_suffix(".md").write_text(markdown)
    print(f"[{prefix}] wrote {path} and .md")
    return path
