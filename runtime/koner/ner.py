"""The NER object: load a model folder once, then text -> entities, one text or many."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

from . import windows as win
from .aggregate import STRATEGIES, entities
from .entity import Entity
from .errors import LabelMismatchError, ModelNotFoundError, VocabularyMismatchError
from .manifest import read_manifest
from .session import ModelSession, SessionOptions
from .tokens import TextTokenizer

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default"


class NER:
    """A loaded koner model; call it on a string for its entities. Safe to share between threads."""

    def __init__(self, folder: Path, *, options: SessionOptions, aggregation: str, overlap: int,
                 model_file: Optional[str] = None):
        _check_strategy(aggregation)
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelNotFoundError(f"{folder}: no such model folder; give the folder `koner export` wrote, "
                                     "or no path for the bundled model")
        self.folder = folder
        self.manifest = read_manifest(folder)
        self.labels = self.manifest.labels
        self.max_length = self.manifest.max_length
        width = self.max_length - 2
        if not isinstance(overlap, int) or not 0 <= overlap <= width // 2:
            raise ValueError(f"overlap must be an integer from 0 to {width // 2} tokens, not {overlap!r}")
        self.overlap = overlap
        self.aggregation = aggregation
        self.tokenizer = TextTokenizer(folder / self.manifest.tokenizer_file, lowercase=self.manifest.lowercase)
        own_file = model_file in (None, self.manifest.model_file)
        quantized = ("quantization" in self.manifest.raw) if own_file else None  # None: look in the file
        prefused = own_file and "graph_optimization" in self.manifest.raw.get("export", {})
        self.session = ModelSession(folder / (model_file or self.manifest.model_file), options, quantized, prefused)
        # Dynamic int8 quantization scales the activations of a whole call together, so a padded batch
        # would make one text's labels depend on its neighbours: quantized models run one window a call.
        self._rows_alone = self.session.quantized
        self._check_model()

    @classmethod
    def load(cls, path: Union[str, Path, None] = None, *, threads: Optional[int] = None,
             aggregation: str = "simple", spinning: bool = False, memory_arena: bool = True,
             optimization: str = "auto", overlap: int = 128, model_file: Optional[str] = None) -> "NER":
        """Load a model folder (None: the bundled stand-in) and check it; `model_file` picks another .onnx in it."""
        opts = SessionOptions(threads=threads, spinning=spinning, memory_arena=memory_arena,
                              optimization=optimization)
        return cls(Path(path) if path is not None else DEFAULT_MODEL, options=opts, aggregation=aggregation,
                   overlap=overlap, model_file=model_file)

    def _check_model(self) -> None:
        tok, sess = self.tokenizer, self.session
        probe = np.array([[tok.cls_id, tok.vocab_size - 1, tok.sep_id]], dtype=np.int64)
        try:
            out = sess.run(probe, np.ones_like(probe))
        except Exception as exc:
            raise VocabularyMismatchError(
                tok.path, f"has {tok.vocab_size} tokens but the model in {sess.path.name} rejects id "
                          f"{tok.vocab_size - 1} ({str(exc).strip()[:120]}); use the tokenizer the model was "
                          "exported with") from None
        width = out.shape[-1]
        if width != len(self.labels):
            raise LabelMismatchError(
                self.folder / "koner.json", f"lists {len(self.labels)} labels but {sess.path.name} outputs "
                                            f"{width} scores per token; re-export the model with `koner export`")

    def __call__(self, text: str, *, aggregation: Optional[str] = None) -> list[Entity]:
        """The entities of one text, in text order, with character offsets into it."""
        return self.batch([text], batch_size=1, aggregation=aggregation)[0] if _check_text(text) else []

    def batch(self, texts: Iterable[str], batch_size: int = 16, *,
              aggregation: Optional[str] = None) -> list[list[Entity]]:
        """The entities of each text, in input order; runs length-sorted micro-batches."""
        if isinstance(texts, str):
            raise TypeError("batch() takes a list of strings; call the model itself on a single string")
        texts = list(texts)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        strategy = aggregation or self.aggregation
        _check_strategy(strategy)
        live = [i for i, t in enumerate(texts) if _check_text(t)]
        results: list[list[Entity]] = [[] for _ in texts]
        if not live:
            return results
        toks = ([self.tokenizer.encode(texts[live[0]])] if len(live) == 1 else
                self.tokenizer.encode_batch([texts[i] for i in live]))
        plans = [win.plan(t, self.max_length, self.overlap) for t in toks]
        flat = [w for p in plans for w in p]
        logits = self._run(flat, batch_size)
        pos = 0
        for i, t, p in zip(live, toks, plans):
            rows = logits[pos:pos + len(p)]
            pos += len(p)
            merged = win.stitch(len(t.ids), p, rows)
            results[i] = entities(texts[i], t, merged, self.labels, strategy, self.tokenizer.join,
                                  self.tokenizer.unk_id)
        return results

    def _run(self, windows: list[win.Window], batch_size: int = 16) -> list[np.ndarray]:
        if self._rows_alone:
            return [self.session.run(w.ids[None, :], np.ones((1, len(w.ids)), np.int64))[0] for w in windows]
        out: list[Optional[np.ndarray]] = [None] * len(windows)
        order = sorted(range(len(windows)), key=lambda k: len(windows[k].ids))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            n = max(len(windows[k].ids) for k in idx)
            ids = np.zeros((len(idx), n), dtype=np.int64)
            mask = np.zeros((len(idx), n), dtype=np.int64)
            for r, k in enumerate(idx):
                m = len(windows[k].ids)
                ids[r, :m] = windows[k].ids
                mask[r, :m] = 1
            lg = self.session.run(ids, mask)
            for r, k in enumerate(idx):
                out[k] = lg[r, :len(windows[k].ids)]
        return out  # type: ignore[return-value]


def _check_text(text) -> bool:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    return bool(text.strip())


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"aggregation must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
