"""A model folder's check set (check-set.json) edited on purpose, for `koner check` and `koner serve --check`."""
from __future__ import annotations

import json
from pathlib import Path

from .models import rehash


def edit_check_set(folder: Path, change) -> None:
    """Apply `change` to the check set's sentences and record the edited file's hash in koner.json."""
    from koner.manifest import CHECK_FILE

    path = folder / CHECK_FILE
    doc = json.loads(path.read_text("utf-8"))
    change(doc["sentences"])
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    rehash(folder)


def entity_token(sentences):
    """(sentence, token) of the first token the model labels as part of an entity."""
    for k, s in enumerate(sentences):
        for i, lab in enumerate(s["int8"]):
            if lab != 0 and lab == s["pytorch"][i]:
                return k, i
    raise AssertionError("no entity token in the check set")


def decisive_flip(sentences):
    """Edit a check set as if PyTorch and the export machine had both said O where this CPU says B-/I-."""
    k, i = entity_token(sentences)
    sentences[k]["pytorch"][i] = sentences[k]["int8"][i] = 0
    sentences[k]["close"] = [c for c in sentences[k]["close"] if c[0] != i]
