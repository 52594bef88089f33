"""The bundled Korean corpora (parity and calibration) and the one JSONL reader for them and for yours."""
from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Optional

from .errors import CorpusError

DATA = Path(__file__).resolve().parent / "data"
PARITY_CORPUS = DATA / "parity-corpus.jsonl"
CALIBRATION = DATA / "calibration.jsonl"
SHAPE = 'give a JSONL file with one JSON object holding a "text" string on each line'


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL corpus; each gets an `id` (its line number unless given) and a `category`.

    Raises CorpusError, naming the file and line, for a file that cannot be read, a line that is not UTF-8 or
    not a JSON object with a `text` string, a `gold` that is not [start, end, label] spans, or no row at all."""
    rows = []
    try:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                if raw.strip():
                    rows.append(_row(path, n, raw))
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read ({exc.strerror or exc}); {SHAPE}") from None
    if not rows:
        raise CorpusError(f"{path}: holds no texts; {SHAPE}")
    return rows


def _row(path: Path, n: int, raw: bytes) -> dict:
    """Line `n` of a corpus as a row, checked."""
    try:
        r = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CorpusError(f"{path}:{n}: not UTF-8; save the corpus as UTF-8") from None
    except ValueError as exc:
        raise CorpusError(f"{path}:{n}: not JSON ({exc}); {SHAPE}") from None
    if not isinstance(r, dict) or not isinstance(r.get("text"), str):
        raise CorpusError(f"{path}:{n}: no \"text\" string; {SHAPE}")
    gold = r.get("gold")
    if gold is not None and not (isinstance(gold, list) and all(
            isinstance(g, list) and len(g) == 3 and all(isinstance(x, int) and not isinstance(x, bool) for x in g[:2])
            and isinstance(g[2], str) for g in gold)):
        raise CorpusError(f"{path}:{n}: \"gold\" must be a list of [start, end, label] spans")
    r.setdefault("id", str(n))
    r.setdefault("category", "text")
    return r


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
