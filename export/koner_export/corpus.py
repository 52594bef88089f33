"""The bundled Korean corpora (parity and calibration) and the one JSONL reader for them and for yours."""
from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Optional

DATA = Path(__file__).resolve().parent / "data"
PARITY_CORPUS = DATA / "parity-corpus.jsonl"
CALIBRATION = DATA / "calibration.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL corpus; each gets an `id` (its line number unless given) and a `category`."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                r = json.loads(line)
                r.setdefault("id", str(n))
                r.setdefault("category", "text")
                rows.append(r)
    return rows


def texts(path: Path, *, skip_categories: tuple[str, ...] = ()) -> list[str]:
    """The `text` of each row of a JSONL corpus, leaving out the categories named."""
    return [r["text"] for r in read_jsonl(path) if r["category"] not in skip_categories]


def sample_rows(rows: list[dict], sample: Optional[int], seed: int = 0) -> list[dict]:
    """At most `sample` rows, every category kept (at least one row each, the rest in proportion)."""
    if not sample or sample >= len(rows):
        return rows
    by_cat: dict[str, list] = defaultdict(list)
    for r in rows:
        by_cat[r["category"]].append(r)
    rng = random.Random(seed)
    cats = sorted(by_cat)
    quota = {c: 1 for c in cats} if sample >= len(cats) else {c: 0 for c in cats}
    left = sample - sum(quota.values())
    # the rest in proportion to each category's size, largest remainders first, never past `sample`
    shares = {c: (len(by_cat[c]) - quota[c]) * left / max(1, len(rows) - sum(quota.values())) for c in cats}
    for c in cats:
        quota[c] += int(shares[c])
    rest = sorted(cats, key=lambda c: -(shares[c] - int(shares[c])))
    for c in rest[:sample - sum(quota.values())]:
        quota[c] += 1
    return [r for c in cats for r in rng.sample(by_cat[c], min(len(by_cat[c]), quota[c]))]
