"""The progress line every long-running `koner` command draws on stderr (texts, texts/s, entities, elapsed)."""
from __future__ import annotations

import sys
import time


class Progress:
    """A progress line on stderr, redrawn at most twice a second; nothing at all when not `enabled`."""

    def __init__(self, enabled: bool):
        self.enabled, self.start, self.last = enabled, time.perf_counter(), 0.0
        self.texts = self.entities = 0

    def add(self, texts: int = 1, entities: int = 0) -> None:
        """Count answered texts and the entities they had."""
        self.texts += texts
        self.entities += entities
        now = time.perf_counter()
        if self.enabled and now - self.last >= 0.5:
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        el = now - self.start
        rate = self.texts / el if el > 0 else 0.0
        sys.stderr.write(f"\rkoner: {self.texts:,} texts, {rate:,.0f} texts/s, {self.entities:,} entities, "
                         f"{el:,.1f} s ")
        sys.stderr.flush()

    def done(self) -> None:
        """Draw the final figures and end the line."""
        if self.enabled:
            self._draw(time.perf_counter())
            sys.stderr.write("\n")
