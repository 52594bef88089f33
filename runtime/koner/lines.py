"""Input lines: the one rule by which every koner command reads lines, from a file or from stdin alike.

Text is UTF-8; bytes that are not UTF-8 become lone surrogates (reported or escaped later, never a crash). A
line ends at "\\n" only, and its ending, "\\n" or "\\r\\n", is not part of its text; a bare "\\r" is text, as
for any other line-by-line tool, so line N of an output is line N of its input.

A line holds at most `MAX_CHARS` characters (ten million: a long document, about 200 MB at its peak through
`koner ner`); a longer one is read past in bounded pieces, never held, and comes out as `Overlong`, which each
reader reports as a failed line, so input without a newline (`/dev/zero`, a corrupt file) cannot exhaust memory.
"""
from __future__ import annotations

import io
import os
import sys
from typing import IO, Iterable, Iterator, Union

ERRORS = "surrogateescape"  # how bytes that are not UTF-8 are read: as lone surrogates, position kept
MAX_CHARS = 10_000_000  # one line's characters at most
_PIECE = 1 << 20  # an over-long line is read past this many characters at a time


class Overlong(str):
    """What `read` gives for a line over its limit (empty text; `chars`: how many characters it had)."""

    chars: int

    def __new__(cls, chars: int) -> "Overlong":
        self = super().__new__(cls, "")
        self.chars = chars
        return self

    def reason(self, limit: int) -> str:
        """Why the line is skipped, for a `koner:` line."""
        return f"the line has {self.chars:,} characters, over the limit of {limit:,}; split it into lines"


def open_file(path: Union[str, "os.PathLike[str]"]) -> IO[str]:
    """A file opened to be read in lines (OSError when it cannot be)."""
    return open(path, encoding="utf-8", errors=ERRORS, newline="\n")


def stdin() -> IO[str]:
    """Standard input, set to be read in lines by the same rule as a file."""
    if isinstance(sys.stdin, io.TextIOWrapper):
        try:
            sys.stdin.reconfigure(encoding="utf-8", errors=ERRORS, newline="\n")
        except ValueError:  # already read from: it keeps what it has
            pass
    return sys.stdin


def text(line: str) -> str:
    """A line's text: the line without its ending ("\\n" or "\\r\\n")."""
    if line.endswith("\n"):
        return line[:-2] if line.endswith("\r\n") else line[:-1]
    return line


def read(stream: Iterable[str], max_chars: int = MAX_CHARS) -> Iterator[str]:
    """Each line's text, in order; a line over `max_chars` characters as `Overlong`, read past in bounded pieces."""
    readline = getattr(stream, "readline", None)
    if readline is None:  # a list or generator of lines: already in memory
        for line in stream:
            yield text(line) if len(text(line)) <= max_chars else Overlong(len(text(line)))
        return
    while True:
        line = readline(max_chars + 2)  # room for a "\r\n" ending
        if not line:
            return
        body = text(line)
        if len(body) <= max_chars and (line.endswith("\n") or len(line) <= max_chars):
            yield body
            continue
        chars = len(line)  # over the limit: count the rest of the line without holding it
        while not line.endswith("\n"):
            line = readline(_PIECE)
            if not line:
                break
            chars += len(line)
        yield Overlong(chars - (2 if line.endswith("\r\n") else 1 if line.endswith("\n") else 0))
