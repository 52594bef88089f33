"""How `koner ner` and `koner mask` write each answered text: one `Writer` interface, a class per output.

Entities reach `write` as an iterable and may come one by one (a long text's, as they are found): every
writer writes them as they come and holds none back.
"""
from __future__ import annotations

import html
import json
import secrets
from abc import ABC, abstractmethod
from typing import IO, Iterable, Iterator, Optional

from .. import jsonl
from ..entity import Entity
from ..mask import mask
from ..tokens import encodable
from .items import Item


class Writer(ABC):
    """Writes each answered text on `out`; `skipped` and `finish` do nothing unless the output needs them."""

    def __init__(self, out: IO[str]):
        self.out = out

    @abstractmethod
    def write(self, item: Item, ents: Iterable[Entity]) -> int:
        """Write one text's answer; returns how many entities (or replaced spans) it had."""

    def skipped(self, item: Item, why: str) -> None:
        """Show a line that could not be answered, where the output has a place for it (only HTML has)."""

    def finish(self) -> None:
        """End the output after the last text (only HTML has an end)."""

    def flush(self) -> None:
        """Hand what is written so far to the reader."""
        self.out.flush()


class TableWriter(Writer):
    """A text, then one aligned line per entity (label, offsets, score, text): what a terminal shows."""

    def write(self, item: Item, ents: Iterable[Entity]) -> int:
        """Write one text's block; returns how many entities it had."""
        self.out.write(encodable(item.text or "") + "\n")
        n = 0
        for e in ents:
            self.out.write(f"  {e.label:<4} {e.start:>5}-{e.end:<5} {e.score:.3f}  {encodable(e.text)}\n")
            n += 1
        if not n:
            self.out.write("  (no entities)\n")
        return n


class JsonlWriter(Writer):
    """One JSON record a text: its id (JSONL input) or line number and text, then its entities as they come."""

    def __init__(self, out: IO[str], jsonl_input: bool, with_text: bool):
        super().__init__(out)
        self.jsonl_input, self.with_text = jsonl_input, with_text

    def write(self, item: Item, ents: Iterable[Entity]) -> int:
        """Write one text's record; returns how many entities it had."""
        key: dict = {"id": item.ident} if self.jsonl_input else {"line": item.line}
        if self.with_text and not self.jsonl_input:
            key["text"] = item.text or ""
        self.out.write(jsonl.dumps(key)[:-1] + ', "entities": [')  # entities follow as they are found
        n = 0
        for e in ents:
            self.out.write((", " if n else "") + jsonl.dumps(e.to_dict(extended=True)))
            n += 1
        self.out.write("]}\n")
        return n


class HtmlWriter(Writer):
    """One self-contained HTML page: a legend, then each text with its entities highlighted, as they come."""

    def __init__(self, out: IO[str], types: Iterable[str], jsonl_input: bool = False):
        from ..render import Palette, page_head

        super().__init__(out)
        self.palette, self.jsonl_input = Palette(tuple(types)), jsonl_input
        self.out.write(page_head(self.palette))

    def _caption(self, item: Item) -> None:
        what = f"id {json.dumps(item.ident, ensure_ascii=False)}" if self.jsonl_input else f"line {item.line}"
        self.out.write(f'<div class="koner-caption">{html.escape(encodable(what))}</div>\n')

    def skipped(self, item: Item, why: str) -> None:
        """Show a line that could not be answered, with why, where its text would be."""
        self.out.write(f'<div class="koner-text koner-none" id="text-{item.line}">line {item.line} skipped: '
                       f'{html.escape(encodable(why))}</div>\n')

    def write(self, item: Item, ents: Iterable[Entity]) -> int:
        """Write one text's block; returns how many entities it had."""
        from ..render import block

        if self.jsonl_input:
            self._caption(item)
        n = 0

        def counting() -> Iterator[Entity]:  # counts them as they pass, holding none
            nonlocal n
            for e in ents:
                n += 1
                yield e

        for piece in block(item.text or "", counting(), self.palette, item.line):
            self.out.write(piece)
        return n

    def finish(self) -> None:
        """End the page."""
        from ..render import PAGE_END

        self.out.write(PAGE_END)


class MaskWriter(Writer):
    """Writes each text masked: one line of text, or a JSONL record with the replacements."""

    def __init__(self, out: IO[str], jsonl_output: bool, jsonl_input: bool, style: str, salt: Optional[str]):
        super().__init__(out)
        self.jsonl, self.jsonl_input, self.style = jsonl_output, jsonl_input, style
        self.salt = salt if salt is not None else secrets.token_hex(8)  # one per run: one pseudonym per name

    def write(self, item: Item, ents: Iterable[Entity]) -> int:
        """Write one text masked; returns how many spans were replaced."""
        masked = mask(item.text or "", list(ents), self.style, self.salt)
        if not self.jsonl:
            self.out.write(encodable(masked.text) + "\n")
            return len(masked.replacements)
        rec: dict = {"id": item.ident} if self.jsonl_input else {"line": item.line}
        rec["text"] = masked.text
        rec["replacements"] = [r.to_dict() for r in masked.replacements]
        self.out.write(jsonl.dumps(rec) + "\n")
        return len(masked.replacements)
