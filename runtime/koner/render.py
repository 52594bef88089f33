"""Entities as highlighted HTML: one self-contained page (inline CSS, no scripts, no external assets).

Every piece of text is HTML-escaped, so an input holding `<script>` or `<img onerror=...>` is shown, never run.
A page is produced as a stream of strings (`page`), text by text and, within a text, entity by entity, so
thousands of lines or a long text are written to a file in bounded memory. `Rendered` is what
`NER.render` returns: `.html` (the whole page) and `_repr_html_` (the same view for a notebook cell).
"""
from __future__ import annotations

import html
from typing import Iterable, Iterator, Optional, Sequence

from .entity import Entity
from .tokens import encodable

# The 15 TTA tags of the model card, with the English names it gives them.
TAG_NAMES = {"PS": "PERSON", "LC": "LOCATION", "OG": "ORGANIZATION", "AF": "ARTIFACTS", "DT": "DATE", "TI": "TIME",
             "CV": "CIVILIZATION", "AM": "ANIMAL", "PT": "PLANT", "QT": "QUANTITY", "FD": "STUDY_FIELD",
             "TR": "THEORY", "EV": "EVENT", "MT": "MATERIAL", "TM": "TERM"}
TAG_COLOURS = {"PS": "#ffd6a5", "LC": "#b9fbc0", "OG": "#a0c4ff", "AF": "#ffc6ff", "DT": "#fdffb6", "TI": "#f1e4c3",
               "CV": "#caffbf", "AM": "#ffadad", "PT": "#98f5e1", "QT": "#e4c1f9", "FD": "#cfe1f7", "TR": "#f4d6cc",
               "EV": "#ffcfd2", "MT": "#d0f4de", "TM": "#e2e2df"}
_SPARE = ("#c7ceea", "#ffdac1", "#e2f0cb", "#b5ead7", "#ffb7b2", "#f9f0c1", "#d5c6e0", "#c1e1c1")

_CSS = """
.koner-view{font:15px/1.9 system-ui,-apple-system,"Apple SD Gothic Neo","Noto Sans KR","Malgun Gothic",sans-serif;
color:#1f2328;max-width:60rem}
.koner-view .koner-legend{display:flex;flex-wrap:wrap;gap:.35rem .5rem;margin:0 0 1rem;padding:0;list-style:none;
font-size:13px}
.koner-view .koner-legend li{padding:0 .45rem;border-radius:.3rem}
.koner-view .koner-text{margin:0 0 .9rem;padding:.5rem .75rem;border-left:3px solid #d0d7de;white-space:pre-wrap;
overflow-wrap:anywhere}
.koner-view mark{padding:.05rem .2rem;border-radius:.3rem;color:inherit}
.koner-view mark .koner-label{margin-left:.25rem;font-size:10px;font-weight:700;vertical-align:middle;opacity:.75}
.koner-view .koner-none{color:#6e7781;font-size:13px}
.koner-view .koner-caption{color:#6e7781;font-size:12px;margin:0 0 -.6rem .8rem}
"""


def entity_type(label: str) -> str:
    """The type of an entity's label: `PS` for `PS`, and for aggregation `none`'s `B-PS` / `I-PS`."""
    return label[2:] if label[:2] in ("B-", "I-") else label


def type_class(kind: str) -> str:
    """The CSS class of an entity type, made from its name alone (any name is safe, and the same type has the
    same class, so two views on one page never recolour each other)."""
    return "koner-t-" + kind.encode("utf-8").hex()


class Palette:
    """A CSS class and colour for each entity type (the 15 TTA tags' own colours, others from a spare set)."""

    def __init__(self, types: Sequence[str]):
        self.types = tuple(types)
        self.colours = [TAG_COLOURS.get(t) or _SPARE[sum(t.encode("utf-8")) % len(_SPARE)] for t in self.types]

    def cls(self, label: str) -> str:
        """The CSS class of a label's type."""
        return type_class(entity_type(label))

    def css(self) -> str:
        """The stylesheet: layout, and one rule per type."""
        rules = [f".koner-view .{type_class(t)}{{background:{c}}}" for t, c in zip(self.types, self.colours)]
        return _CSS.strip() + "\n.koner-view mark{background:#eaeef2}\n" + "\n".join(rules) + "\n"

    def legend(self) -> str:
        """The types with their names, as a list of coloured chips."""
        items = "".join(f'<li class="{type_class(t)}"><b>{_esc(t)}</b> {_esc(TAG_NAMES.get(t, ""))}</li>'
                        for t in self.types)
        return f'<ul class="koner-legend">{items}</ul>'


def _esc(text: str) -> str:
    return html.escape(encodable(text), quote=True)


def marked(text: str, entities: Iterable[Entity], palette: Palette) -> Iterator[str]:
    """`text` as escaped HTML with each entity in a coloured <mark> showing its label, piece by piece."""
    at, n = 0, 0
    for e in entities:
        if e.start < at:  # entities come in text order and never overlap; anything else is shown as plain text
            continue
        yield _esc(text[at:e.start])
        title = f"{e.label} {TAG_NAMES.get(entity_type(e.label), '')} {e.score:.3f}".replace("  ", " ")
        yield (f'<mark class="{palette.cls(e.label)}" data-label="{_esc(e.label)}" title="{_esc(title)}">'
               f'{_esc(text[e.start:e.end])}<span class="koner-label">{_esc(e.label)}</span></mark>')
        at, n = e.end, n + 1
    yield _esc(text[at:])
    if not text.strip():
        yield '<span class="koner-none">(empty)</span>'


def block(text: str, entities: Iterable[Entity], palette: Palette, number: Optional[int] = None) -> Iterator[str]:
    """One text's <div>, its entities highlighted."""
    ident = f' id="text-{number}"' if number is not None else ""
    yield f'<div class="koner-text"{ident}>'
    yield from marked(text, entities, palette)
    yield "</div>\n"


def page_head(palette: Palette, title: str = "koner entities") -> str:
    """The start of a page: doctype, inline CSS, the legend."""
    return (f'<!doctype html>\n<html lang="ko">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">\n'
            f'<title>{_esc(title)}</title>\n<style>\n{palette.css()}</style>\n</head>\n'
            f'<body>\n<main class="koner-view">\n{palette.legend()}\n')


PAGE_END = "</main>\n</body>\n</html>\n"


def page(items: Iterable[tuple[str, Iterable[Entity]]], types: Sequence[str], title: str = "koner entities"
         ) -> Iterator[str]:
    """A whole page for (text, entities) pairs in input order, as a stream of strings."""
    palette = Palette(types)
    yield page_head(palette, title)
    for n, (text, ents) in enumerate(items, 1):
        yield from block(text, ents, palette, n)
    yield PAGE_END


class Rendered:
    """Texts with their entities highlighted: `.html` is a self-contained page; notebooks show it inline."""

    def __init__(self, items: list[tuple[str, list[Entity]]], types: Sequence[str]):
        self.items, self.types = items, tuple(types)

    @property
    def html(self) -> str:
        """The whole page: inline CSS, a legend, every text highlighted."""
        return "".join(page(self.items, self.types))

    def _repr_html_(self) -> str:
        """The view for a notebook cell: the same CSS and markup, without the page around them."""
        palette = Palette(self.types)
        body = "".join(s for n, (t, e) in enumerate(self.items, 1) for s in block(t, e, palette, None))
        return f'<div class="koner-view"><style>{palette.css()}</style>{palette.legend()}{body}</div>'

    def __repr__(self) -> str:
        n = sum(len(e) for _, e in self.items)
        return f"Rendered({len(self.items)} text(s), {n} entities)"
