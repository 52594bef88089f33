"""koner as a spaCy pipeline component: `nlp.add_pipe("koner_ner", config={...})` (extra `koner[spacy]`).

The factory is registered through spaCy's `spacy_factories` entry point, so no import is needed. It sets
`doc.ents` from koner's character offsets. Korean words carry their particles (`서울역으로`), so an entity
often ends inside a token of spaCy's rule-based tokenizer; `align` says what to do then:

- `"split"` (default): split those tokens at the entity's edges, so `doc.ents` are exactly koner's entities;
- `"strict"`: keep the tokens, and leave out an entity that does not fall on token boundaries;
- `"expand"`: keep the tokens, and widen such an entity to the tokens it touches.

Either way nothing is silent: `doc._.koner_entities` holds koner's own entities (as dicts: label, start, end,
score, text, so a doc still serialises and `nlp.pipe(n_process=...)` works), `doc._.koner_unaligned` those
that could not be set (strict: not on token boundaries; expand: widened onto a span already taken; or
overlapping an entity the doc already had, with `keep_existing`), and `doc._.koner_widened` those set wider
than koner found them (expand). `nlp.pipe` runs the texts through `NER.pipe` (worker threads, batching).
"""
from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Iterator, Optional, Union

from .choices import check_positive
from .entity import Entity
from .ner import NER

try:
    from spacy.language import Language
    from spacy.tokens import Doc, Span
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("koner's spaCy component needs spaCy: pip install 'koner[spacy]'") from exc

ALIGN = ("split", "strict", "expand")

for _name in ("koner_entities", "koner_unaligned", "koner_widened"):
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=None)


class KonerNER:
    """The `koner_ner` component: one loaded koner model; sets `doc.ents` from its entities."""

    def __init__(self, nlp: Language, name: str = "koner_ner", *, model: Optional[str] = None,
                 labels: Union[None, str, list[str]] = None, merge: Union[bool, str, list[str]] = False,
                 decode: str = "argmax", aggregation: str = "simple", align: str = "split",
                 keep_existing: bool = False, batch_size: int = 32, workers: Optional[int] = None,
                 threads: Optional[int] = None):
        if align not in ALIGN:
            raise ValueError(f"align must be one of {', '.join(ALIGN)}, not {align!r}")
        check_positive("batch_size", batch_size)
        self.name, self.align, self.keep_existing, self.batch_size = name, align, keep_existing, batch_size
        self.ner = NER.load(model, labels=labels, merge=merge, decode=decode, aggregation=aggregation,
                            workers=workers, threads=threads)  # the folder checked first, then the options parsed
        self.unaligned = 0  # entities not set exactly (left out or widened) since the component was made

    def __call__(self, doc: Doc) -> Doc:
        """Set the entities of one doc."""
        return self._set(doc, self.ner(doc.text))

    def pipe(self, stream: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        """Set the entities of many docs, through `NER.pipe` (in order, lazily, on worker threads)."""
        held: deque[Doc] = deque()

        def texts() -> Iterator[str]:
            for doc in stream:
                held.append(doc)
                yield doc.text

        for ents in self.ner.pipe(texts(), batch_size=self.batch_size):
            yield self._set(held.popleft(), ents)

    def _set(self, doc: Doc, ents: list[Entity]) -> Doc:
        if self.align == "split":
            doc = _split_at(doc, ents)
        existing = list(doc.ents) if self.keep_existing else []
        taken = [(s.start_char, s.end_char) for s in existing]
        spans, missed, widened = [], [], []
        mode = "expand" if self.align == "expand" else "strict"
        for e in ents:
            span = doc.char_span(e.start, e.end, label=e.label, alignment_mode=mode)
            if span is None or any(a < span.end_char and span.start_char < b for a, b in taken):
                missed.append(e)
                continue
            if (span.start_char, span.end_char) != (e.start, e.end):
                widened.append(e)  # set on the tokens it touches, and reported
            spans.append(span)
            taken.append((span.start_char, span.end_char))
        doc.ents = sorted(existing + spans, key=lambda s: s.start)
        doc._.koner_entities = [_record(e) for e in ents]
        doc._.koner_unaligned = [_record(e) for e in missed]
        doc._.koner_widened = [_record(e) for e in widened]
        self.unaligned += len(missed) + len(widened)
        return doc


def _record(e: Entity) -> dict:
    return {"label": e.label, "start": e.start, "end": e.end, "score": e.score, "text": e.text}


def _split_at(doc: Doc, ents: list[Entity]) -> Doc:
    """Split the tokens an entity starts or ends inside, so every entity falls on token boundaries."""
    cuts = sorted({c for e in ents for c in (e.start, e.end)})
    if not cuts:
        return doc
    plans = []
    for token in doc:
        lo, hi = token.idx, token.idx + len(token.text)
        inner = [c - lo for c in cuts if lo < c < hi]
        if inner:
            edges = [0] + inner + [hi - lo]
            plans.append((token, [token.text[a:b] for a, b in zip(edges, edges[1:])]))
    if plans:
        with doc.retokenize() as retokenizer:
            for token, orths in plans:
                # the first piece keeps the token's place in a parse (its head, dependency, sentence start);
                # the others hang on it
                first = token.head if token.head.i != token.i else (token, 0)
                heads = [first] + [(token, 0)] * (len(orths) - 1)
                attrs = {"DEP": [token.dep_] + ["dep" if token.dep_ else ""] * (len(orths) - 1)}
                retokenizer.split(token, orths, heads=heads, attrs=attrs)
    return doc


@Language.factory("koner_ner", default_config={"model": None, "labels": None, "merge": False, "decode": "argmax",
                                               "aggregation": "simple", "align": "split", "keep_existing": False,
                                               "batch_size": 32, "workers": None, "threads": None})
def make_koner_ner(nlp: Language, name: str, model: Optional[str], labels: Any, merge: Any, decode: str,
                   aggregation: str, align: str, keep_existing: bool, batch_size: int, workers: Optional[int],
                   threads: Optional[int]) -> KonerNER:
    """spaCy's factory for `koner_ner`; the config mirrors `NER.load`."""
    return KonerNER(nlp, name, model=model, labels=labels, merge=merge, decode=decode, aggregation=aggregation,
                    align=align, keep_existing=keep_existing, batch_size=batch_size, workers=workers, threads=threads)
