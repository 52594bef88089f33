"""The input of `koner ner` and `koner mask`: one `Item` per input line, plain text or JSONL."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

from .. import jsonl, lines


@dataclass
class Item:
    """One input line: its number, JSONL id, text, or why it was skipped."""

    line: int
    ident: Optional[object] = None
    text: Optional[str] = None
    error: Optional[str] = None


def read_items(stream: Iterable[str], json_lines: bool) -> Iterator[Item]:
    """One Item per input line (blank JSONL lines are skipped), split by the one line rule (`koner.lines`)."""
    if not json_lines:
        for n, text in enumerate(lines.read(stream), 1):
            yield Item(n, error=text.reason(lines.MAX_CHARS)) if isinstance(text, lines.Overlong) else Item(n, text=text)
        return
    for rec in jsonl.read(stream):
        obj = rec.value
        if rec.error is not None:
            yield Item(rec.number, error=str(rec.error))
        elif not isinstance(obj, dict) or "text" not in obj:
            yield Item(rec.number, error="no 'text' field")
        elif not isinstance(obj["text"], str):
            yield Item(rec.number, obj.get("id"), error=f"'text' is {type(obj['text']).__name__}, not a string")
        else:
            yield Item(rec.number, obj.get("id"), obj["text"])
