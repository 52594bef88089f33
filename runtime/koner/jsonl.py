"""JSON lines in and out: the one reader, parse rule and write rule of every koner command and the server.

Reading (`read`): lines split as `koner.lines` splits every input; blank lines skipped; a UTF-8 byte-order
mark at the start of the stream skipped (editors on Windows write one; it is not JSON). Parsing: anything `json` rejects, including nesting too deep for the parser and integers too long to convert,
is a `JsonLineError` (a ValueError) with a short reason, never a crash. Writing: UTF-8 as is, except that a
record holding lone surrogates (text decoded from bytes that were not UTF-8, or "\\ud800" escapes in the
input) is written with \\uXXXX escapes instead, so it is written losslessly rather than refused.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, NamedTuple, Optional

from . import lines
from .tokens import encodable

BOM = "\ufeff"


class JsonLineError(ValueError):
    """A line or body is not JSON koner can read; the message says why."""


def loads(text: "str | bytes") -> Any:
    """The JSON value of `text`; JsonLineError with a short reason when it is not valid JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonLineError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise JsonLineError("not valid JSON koner reads (nested too deeply)") from None
    except UnicodeDecodeError as exc:
        raise JsonLineError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise JsonLineError(f"not valid JSON koner reads ({exc})") from None


def dumps(value: Any, **kw: Any) -> str:
    """One JSON line (no newline): UTF-8 characters as they are, or \\u escapes where lone surrogates are."""
    line = json.dumps(value, ensure_ascii=False, **kw)
    return line if encodable(line) is line else json.dumps(value, ensure_ascii=True, **kw)


class JsonLine(NamedTuple):
    """One non-blank line of a JSON-lines stream: its number (from 1), its text, and its value or why it has none."""

    number: int
    text: str
    value: Any = None
    error: Optional[JsonLineError] = None


def read(stream: Iterable[str]) -> Iterator[JsonLine]:
    """Every non-blank line of a JSON-lines stream (a file from `lines.open_file`, or `lines.stdin()`), parsed."""
    for number, text in enumerate(lines.read(stream), 1):
        if isinstance(text, lines.Overlong):
            yield JsonLine(number, "", error=JsonLineError(text.reason(lines.MAX_CHARS)))
            continue
        if number == 1 and text.startswith(BOM):
            text = text[1:]
        if not text.strip():
            continue
        try:
            value = loads(text)
        except JsonLineError as exc:
            yield JsonLine(number, text, error=exc)
            continue
        yield JsonLine(number, text, value)
