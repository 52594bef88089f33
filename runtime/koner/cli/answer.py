"""Answering every input line of `koner ner` / `koner mask` in input order, past the lines the model fails on.

Short texts run on the workers (`NER.pipe`); a text longer than `LONG_TEXT_CHARS` gets all workers on its
windows (`NER.iter_entities`), its entities written as they are found. A line the model fails on is
reported with its number and skipped, and the lines read ahead behind it are answered next, in order.
"""
from __future__ import annotations

import sys
from collections import deque
from typing import Iterable, Iterator, Optional

from ..entity import Entity
from ..errors import KonerError, WorkerError
from ..ner import NER
from ..progress import Progress
from ..tokens import LONG_TEXT_CHARS
from .items import Item
from .writers import Writer


class LineFailed(KonerError):
    """A long line's entities could not all be found; what was written for it is incomplete."""


class _Feed:
    """The items in input order, handed to `pipe` as texts until a long one, which waits in `long`."""

    def __init__(self, items: Iterator[Item]):
        self.items = items
        self.held: deque[Item] = deque()  # handed to pipe, not yet answered
        self.again: deque[Item] = deque()  # read ahead by a pipe that stopped at a failure: handed to the next
        self.long: Optional[Item] = None  # a long text, answered when every item before it is

    def shorts(self) -> Iterator[str]:
        """The texts up to the next long one (or the end); each item is held until its answer comes."""
        while True:
            item: Optional[Item]
            if self.again:
                item = self.again.popleft()
            elif self.long is not None:  # a failure stopped the pipe before the long text: it comes first
                return
            else:
                item = next(self.items, None)
            if item is None:
                return
            if item.text is not None and len(item.text) > LONG_TEXT_CHARS:
                self.long = item
                return
            self.held.append(item)
            yield item.text if item.text is not None else ""

    def failed(self) -> Item:
        """The item a failed pipe stopped at (the oldest held); the ones held behind it are handed on again."""
        item = self.held.popleft()
        self.again.extendleft(reversed(self.held))
        self.held.clear()
        return item

    def take_long(self) -> Optional[Item]:
        """The long text waiting, if any (every item before it is answered)."""
        item, self.long = self.long, None
        return item


def answer_all(items: Iterator[Item], ner: NER, writer: Writer, progress: Progress, *, where: str, workers: Optional[int],
               batch_size: int) -> int:
    """Answer every item in input order on `writer`; returns how many lines failed (each reported on stderr).

    A long line the model fails on part-way raises `LineFailed`: its entities so far are written, its record
    ended with a newline.
    """
    feed = _Feed(items)
    failed = 0
    while True:
        try:
            for ents in ner.pipe(feed.shorts(), batch_size=batch_size, workers=workers):
                failed += _answer(feed.held.popleft(), ents, writer, progress, where)
                writer.flush()
        except WorkerError as exc:  # every text before it was answered: the one at fault is the oldest held
            cause = exc.__cause__ or exc
            failed += _skip(feed.failed(), f"the model failed on it ({type(cause).__name__}: {cause})", writer, where)
            continue
        item = feed.take_long()
        if item is None:
            return failed
        try:
            failed += _answer(item, ner.iter_entities(item.text or ""), writer, progress, where)
        except Exception as exc:  # its entities so far are written: end the record's line, then report
            writer.out.write("\n")
            raise LineFailed(f"{where} line {item.line}: the model failed on it ({type(exc).__name__}: {exc}); "
                             "its record is incomplete") from None
        writer.flush()


def _answer(item: Item, ents: Iterable[Entity], writer: Writer, progress: Progress, where: str) -> int:
    """Write one item's answer (or report why it was skipped); returns 1 if it failed, else 0."""
    if item.error is not None:
        return _skip(item, item.error, writer, where)
    progress.add(entities=writer.write(item, ents))
    return 0


def _skip(item: Item, why: str, writer: Writer, where: str) -> int:
    """Report a line that could not be answered, on the output where it has a place and on stderr; returns 1."""
    writer.skipped(item, why)
    writer.flush()
    print(f"koner: {where} line {item.line}: {why}; line skipped", file=sys.stderr)
    return 1
