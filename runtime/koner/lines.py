"""Input lines: the one rule by which every koner command reads lines, from a file or from stdin alike.

Text is UTF-8; bytes that are not UTF-8 become lone surrogates (reported or escaped later, never a crash). A
line ends at "\\n" only, and its ending, "\\n" or "\\r\\n", is not part of its text; a bare "\\r" is text, as
for any other line-by-line tool, so line N of an output is line N of its input.
"""
from __future__ import annotations

import io
import os
import sys
from typing import IO, Iterable, Iterator, Union

ERRORS = "surrogateescape"  # how bytes that are not UTF-8 are read: as lone surrogates, position kept


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


def read(stream: Iterable[str]) -> Iterator[str]:
    """Each line's text, in order."""
    return (text(line) for line in stream)
