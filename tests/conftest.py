"""Shared fixtures: the bundled model, the stand-in checkpoint and an fp32 export of it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "standin" / "model"
EXAMPLES = ["서울역으로 안내해줘.", "에어컨 온도 3도 올려줘.", "아이유 노래 검색해줘."]


@pytest.fixture(scope="session")
def ner():
    from koner import NER

    return NER.load()


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    """The stand-in exported with --keep-fp32 and no parity run (the parity tests run it themselves)."""
    pytest.importorskip("torch")
    from koner_export import export_model

    out = tmp_path_factory.mktemp("export") / "standin"
    export_model(str(STANDIN), out, keep_fp32=True, parity=False)
    return out


@pytest.fixture
def model_copy(tmp_path) -> Path:
    """A private copy of the bundled model folder, to damage."""
    from koner.ner import DEFAULT_MODEL

    dst = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, dst)
    return dst


def rehash(folder: Path) -> None:
    """Record the files of a model folder as they are now in its koner.json (sha256 and size), as an export
    would: a test that edits a file on purpose then reaches the check after the hash check."""
    import hashlib
    import json

    path = folder / "koner.json"
    manifest = json.loads(path.read_text("utf-8"))
    for name, rec in manifest["files"].items():
        data = (folder / name).read_bytes()
        rec.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    path.write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")


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


def fail_on(ner, word: str) -> None:
    """Make `ner`'s model calls fail on any input holding `word`'s first token, as a broken session would."""
    run = ner.session.run
    bomb = ner.tokenizer.encode(word).ids[1]

    def failing(ids, mask):
        if (ids == bomb).any():
            raise RuntimeError("onnxruntime failed")
        return run(ids, mask)

    ner.session.run = failing
