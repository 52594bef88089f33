"""Entities -> the text with each entity replaced (personal data masked), offsets kept exact.

Styles: "tag" (`[PS]`), "char" (`*` per character: the masked text keeps every offset), "hash" (a
salted hash per type and surface form, `[PS-1a2b3c4d]`: the same name gets the same pseudonym within
one call; give the same `salt` to keep pseudonyms across calls), or any callable Entity -> str.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Union

from .entity import Entity

Style = Union[str, Callable[[Entity], str]]
STYLES = ("tag", "char", "hash")


@dataclass(frozen=True)
class Replacement:
    """One masked span: where it was in the original text, what it was and what replaced it."""

    start: int
    end: int
    label: str
    original: str
    replacement: str

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return {"start": self.start, "end": self.end, "label": self.label, "original": self.original,
                "replacement": self.replacement}


@dataclass(frozen=True)
class Masked:
    """The masked text and what was replaced, with offsets into the original text."""

    text: str
    replacements: list[Replacement]

    def __str__(self) -> str:
        return self.text


def check_style(style: Style) -> Style:
    """`style` if it is a known style name or a callable; ValueError otherwise."""
    if not callable(style) and style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)} or a callable, not {style!r}")
    return style


def mask(text: str, ents: Iterable[Entity], style: Style = "tag", salt: Optional[str] = None) -> Masked:
    """`text` with each entity replaced; overlapping entities are masked once, as their union."""
    check_style(style)
    if salt is None and style == "hash":
        salt = os.urandom(8).hex()  # what secrets.token_hex(8) gives, without loading OpenSSL for other styles
    spans = _union(sorted(ents, key=lambda e: (e.start, -e.end)))
    out, reps, pos = [], [], 0
    for start, end, label in spans:
        original = text[start:end]
        if callable(style):
            new = style(Entity(label=label, start=start, end=end, score=1.0, text=original, word=original))
            if not isinstance(new, str):
                raise TypeError(f"the style callable returned {type(new).__name__}, not str")
        elif style == "tag":
            new = f"[{label}]"
        elif style == "char":
            new = "*" * (end - start)
        else:
            import hashlib  # only the hash style needs it (OpenSSL: 3.5 MB RSS)

            digest = hashlib.sha256(f"{salt}\0{label}\0{original}".encode("utf-8", "surrogatepass")).hexdigest()
            new = f"[{label}-{digest[:8]}]"
        out += [text[pos:start], new]
        reps.append(Replacement(start, end, label, original, new))
        pos = end
    out.append(text[pos:])
    return Masked("".join(out), reps)


def _union(ents: list[Entity]) -> list[tuple[int, int, str]]:
    """Spans with overlaps merged (the first entity's label kept), so no character is masked twice."""
    spans: list[list] = []
    for e in ents:
        if e.end <= e.start:
            continue
        if spans and e.start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], e.end)
        else:
            spans.append([e.start, e.end, e.label])
    return [tuple(s) for s in spans]
