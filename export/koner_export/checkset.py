"""The check set export leaves in a model folder for `koner check`: a few dozen parity-corpus sentences with the
int8 model's answers on the export machine and PyTorch's label and logit margins for each token."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from koner import NER
from koner.check import CLOSE_MARGIN, CheckSentence, write_check_set
from koner.cpu import int8_path
from koner.manifest import CHECK_FILE

from .checkpoint import torch_logits
from .corpus import PARITY_CORPUS, read_jsonl, sample_rows
from .environment import versions

SENTENCES = 40  # a few dozen: every category of the corpus, answered in well under a second


def build_check_set(ckpt, folder: Path, *, corpus: Optional[Path] = None, sentences: int = SENTENCES,
                    model_file: Optional[str] = None) -> list[CheckSentence]:
    """Answer `sentences` corpus texts (one model window each, every category kept) with the folder's model
    and with PyTorch; `model_file` names another .onnx of the folder."""
    import torch

    ner = NER.load(folder, threads=1, workers=1, aggregation="simple", model_file=model_file)
    rows = [r for r in read_jsonl(corpus or PARITY_CORPUS) if r["text"].strip()]
    fitting = [r for r in rows if len(ner.tokenize(r["text"]).ids) <= ner.max_length]
    out = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # short sentences one at a time: on a busy 2-core machine 2 threads took 14x the CPU
    try:
        for r in sample_rows(fitting, sentences, seed=0):
            out.append(_answer(ckpt, ner, r["text"]))
    finally:
        torch.set_num_threads(threads)
    return out


def _answer(ckpt, ner: NER, text: str) -> CheckSentence:
    """One sentence as the check set records it."""
    tokens = ner.tokenize(text)
    ids = tokens.ids[None, :]
    mask = np.ones_like(ids)
    int8 = ner.session.run(ids, mask)[0].argmax(-1)
    ref = torch_logits(ckpt.model, ids, mask)[0]
    top = ref.argmax(-1)
    margins = ref[np.arange(len(top)), top][:, None] - ref  # PyTorch's own label over each label, >= 0
    close = {(int(t), int(lab)): float(margins[t, lab]) for t, lab in zip(*np.nonzero(margins < CLOSE_MARGIN))
             if lab != top[t]}
    entities = tuple((e.label, e.start, e.end) for e in ner(text))
    return CheckSentence(text, tuple(int(i) for i in tokens.ids), entities, tuple(int(x) for x in int8),
                         tuple(int(x) for x in top), close)


def write_for(ckpt, folder: Path, *, corpus: Optional[Path] = None) -> Path:
    """Write the check set of the model in `folder` (its koner.json must be written) to folder/CHECK_FILE."""
    path = Path(folder) / CHECK_FILE
    write_check_set(path, build_check_set(ckpt, folder, corpus=corpus), int8_path=int8_path(),
                    versions=versions(("koner", "onnxruntime", "tokenizers", "numpy")))
    return path
