"""The rows of the batch-engine tests and the entities column they must get."""
from __future__ import annotations

from . import ROOT


def table_texts() -> list:
    """500 rows for the batch-engine tests: 497 real Korean sentences (KLUE via konec-dev), a null, an empty
    string and a text of about 3,000 characters (news and review sentences joined)."""
    lines = [line.split("\t", 1)[1].strip() for line in
             (ROOT / "standin" / "data" / "konec-dev.tsv").read_text("utf-8").splitlines()
             if line.startswith("## klue") and "\t" in line]
    sentences = lines[:497]
    long_text = " ".join(lines[497:])[:3000]
    rows = sentences[:200] + [None] + sentences[200:350] + [""] + sentences[350:] + [long_text]
    assert len(rows) == 500 and len(long_text) == 3000
    return rows


def entity_rows(ner, texts: list, float32: bool = True) -> list:
    """What an entities column must hold for `texts`: NER.batch's entities as dicts, None for a null text
    (scores rounded to float32, an Arrow column's type, unless `float32` is False)."""
    import numpy as np

    found = iter(ner.batch([t for t in texts if t is not None]))
    score = (lambda s: float(np.float32(s))) if float32 else (lambda s: s)
    return [None if t is None else
            [{"label": e.label, "start": e.start, "end": e.end, "score": score(e.score), "text": e.text}
             for e in next(found)] for t in texts]
