"""The Entity record: one recognised span with character offsets into the caller's text."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional


@dataclass(frozen=True, slots=True)
class Entity:
    """A labelled span `text[start:end]`; `word` is what the transformers pipeline calls `word`."""

    label: str
    start: int
    end: int
    score: float
    text: str
    word: str
    index: Optional[int] = None  # token index; set only with aggregation "none"

    # spaCy's Span names for the same fields
    label_ = property(lambda self: self.label, doc="The label, under spaCy's Span name.")
    start_char = property(lambda self: self.start, doc="The start offset, under spaCy's Span name.")
    end_char = property(lambda self: self.end, doc="The end offset, under spaCy's Span name.")

    def to_dict(self, extended: bool = False) -> dict:
        """The transformers token-classification pipeline's dict for this entity (JSON-serialisable);
        `extended` adds `text`, the exact slice of the caller's string."""
        if self.index is None:
            d = {"entity_group": self.label, "score": self.score, "word": self.word, "start": self.start,
                 "end": self.end}
        else:
            d = {"entity": self.label, "score": self.score, "index": self.index, "word": self.word,
                 "start": self.start, "end": self.end}
        if extended:
            d["text"] = self.text
        return d


_new = object.__new__
_SETTERS = tuple(Entity.__dict__[f.name].__set__ for f in fields(Entity))  # the slots, in field order
# make_entity fills exactly these seven slots and runs no __init__: a new field or a __post_init__ must change it
assert len(_SETTERS) == 7 and not hasattr(Entity, "__post_init__")


def make_entity(label: str, start: int, end: int, score: float, text: str, word: str,
                index: Optional[int] = None) -> Entity:
    """`Entity(...)` for the hot path: the same frozen record, its slots filled directly (no per-field checks)."""
    e = _new(Entity)
    s_label, s_start, s_end, s_score, s_text, s_word, s_index = _SETTERS
    s_label(e, label)
    s_start(e, start)
    s_end(e, end)
    s_score(e, score)
    s_text(e, text)
    s_word(e, word)
    s_index(e, index)
    return e


def to_dicts(entities: list[Entity]) -> list[dict]:
    """Pipeline-style dicts for a list of entities."""
    return [e.to_dict() for e in entities]
