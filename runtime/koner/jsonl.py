"""JSON lines in and out: the one parse rule and the one write rule of every koner command and the server.

Parsing: anything `json` rejects, including nesting too deep for the parser and integers too long to convert,
is a `JsonLineError` (a ValueError) with a short reason, never a crash. Writing: UTF-8 as is, except that a
record holding lone surrogates (text decoded from bytes that were not UTF-8, or "\\ud800" escapes in the
input) is written with \\uXXXX escapes instead, so it is written losslessly rather than refused.
"""
from __future__ import annotations

import json
from typing import Any

from .tokens import encodable


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
