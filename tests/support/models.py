"""Model folders and sessions, damaged on purpose: re-recorded hashes, a session that fails on a word."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def rehash(folder: Path) -> None:
    """Record the files of a model folder as they are now in its koner.json (sha256 and size), as an export
    would: a test that edits a file on purpose then reaches the check after the hash check."""
    path = folder / "koner.json"
    manifest = json.loads(path.read_text("utf-8"))
    for name, rec in manifest["files"].items():
        data = (folder / name).read_bytes()
        rec.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    path.write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")


def fail_on(ner, word: str) -> None:
    """Make `ner`'s model calls fail on any input holding `word`'s first token, as a broken session would."""
    run = ner.session.run
    bomb = ner.tokenizer.encode(word).ids[1]

    def failing(ids, mask):
        if (ids == bomb).any():
            raise RuntimeError("onnxruntime failed")
        return run(ids, mask)

    ner.session.run = failing
