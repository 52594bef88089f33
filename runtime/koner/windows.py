"""Token sequences -> model-sized windows, and window logits -> one row per token.

A text whose tokens fit `max_length` ([CLS] and [SEP] included) is one window, fed exactly as the
transformers pipeline feeds it. A longer text is cut into windows of max_length - 2 content tokens that
overlap by `overlap` tokens (`NER` passes the model's length for a text within the model, its `window`,
256 by default, for a longer one); each token takes its logits from the window in which it sits farthest
from a cut edge, so every token keeps at least overlap // 2 tokens of context on each side that the
text has. No token is dropped, and entities are grouped afterwards over the whole text, so one that
crosses a window edge comes out whole.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from .tokens import Tokens


@dataclass(frozen=True)
class Window:
    """One model input: token ids with [CLS]/[SEP], and where its content starts in the text's tokens."""

    ids: np.ndarray
    start: int  # index of the first content token in the text's token sequence (1 = just after [CLS])


def starts(n_tokens: int, max_length: int, overlap: int) -> list[int]:
    """Where each window's content starts in the text's tokens (1 = just after [CLS])."""
    if n_tokens <= max_length:
        return [1]
    content, width = n_tokens - 2, max_length - 2
    return [s + 1 for s in range(0, content - width, width - overlap)] + [content - width + 1]


def plan(tokens: Tokens, max_length: int, overlap: int) -> list[Window]:
    """The windows that cover every token of one text."""
    return list(iter_plan(tokens, max_length, overlap))


def iter_plan(tokens: Tokens, max_length: int, overlap: int) -> Iterator[Window]:
    """The windows of one text, made one at a time (a long text's windows are never all held)."""
    n = len(tokens.ids)
    if n <= max_length:
        yield Window(tokens.ids, 1)
        return
    width = max_length - 2
    cls, sep = tokens.ids[:1], tokens.ids[-1:]
    for s in starts(n, max_length, overlap):
        yield Window(np.concatenate([cls, tokens.ids[s:s + width], sep]), s)


def pipeline_starts(n_tokens: int, max_length: int, stride: int) -> list[int]:
    """Where each chunk's content starts when the transformers pipeline runs a long text with `stride`: the
    tokenizer's overflowing windows, each `max_length - 2 - stride` tokens after the one before, the last one
    shorter."""
    content, width = n_tokens - 2, max_length - 2
    if content <= width:
        return [1]
    step = width - stride
    out = [1]
    while out[-1] - 1 + width < content:
        out.append(out[-1] + step)
    return out


def pipeline_chunks(tokens: Tokens, max_length: int, stride: int) -> Iterator[tuple[Window, Tokens]]:
    """The transformers pipeline's chunks of a long text (`pipeline_starts`), each with its own tokens."""
    width = max_length - 2
    n = len(tokens.ids)
    cls, sep = tokens.ids[:1], tokens.ids[-1:]
    for s in pipeline_starts(n, max_length, stride):
        e = min(s + width, n - 1)
        ids = np.concatenate([cls, tokens.ids[s:e], sep])
        chunk = Tokens(ids, [(0, 0)] + list(tokens.offsets[s:e]) + [(0, 0)],
                       np.concatenate([[True], tokens.special[s:e], [True]]),
                       [tokens.strings[0]] + list(tokens.strings[s:e]) + [tokens.strings[n - 1]])
        yield Window(ids, s), chunk


class Stitcher:
    """Window logits, fed in plan order, -> finished per-token logits rows, in text order.

    A token is finished once a window starting after it arrives, so at most one window's rows are held.
    Each token keeps the row of the window in which it sits farthest from a cut (the earlier window on a tie).
    """

    def __init__(self, n_tokens: int):
        self.n = n_tokens
        self.lo = 0  # the first token not yet handed out
        self.rows: Optional[np.ndarray] = None  # rows of tokens lo, lo+1, ...
        self.margin: Optional[np.ndarray] = None
        self.last: Optional[np.ndarray] = None

    def add(self, window: Window, logits: np.ndarray) -> Optional[tuple[int, np.ndarray]]:
        """Take one window's logits; returns (first token, rows) of the tokens this finishes, if any."""
        width, s = len(window.ids) - 2, window.start
        if self.rows is None:  # [CLS] takes its row from the first window
            self.rows, self.margin = logits[:1].copy(), np.full(1, self.n, np.int64)
        done = None
        if s > self.lo:  # no later window reaches tokens before s
            k = s - self.lo
            done = (self.lo, self.rows[:k])
            self.rows, self.margin, self.lo = self.rows[k:], self.margin[k:], s
        grow = s + width - (self.lo + len(self.rows))
        if grow > 0:
            self.rows = np.concatenate([self.rows, np.empty((grow, logits.shape[-1]), logits.dtype)])
            self.margin = np.concatenate([self.margin, np.full(grow, -1, np.int64)])
        local = np.arange(width)
        far = self.n  # the text's own start and end are no cut: context there is all there is
        left = local if s > 1 else np.full(width, far)
        right = width - 1 - local if s + width < self.n - 1 else np.full(width, far)
        margin = np.minimum(left, right)
        at = np.arange(s - self.lo, s - self.lo + width)
        take = margin > self.margin[at]
        self.rows[at[take]] = logits[1:-1][take]
        self.margin[at[take]] = margin[take]
        self.last = logits[-1]
        return done

    def finish(self) -> tuple[int, np.ndarray]:
        """The remaining rows, [SEP]'s (from the last window) included."""
        rows = np.concatenate([self.rows, self.last[None, :]])
        return self.lo, rows


def stitch(n_tokens: int, windows: list[Window], logits: list[np.ndarray]) -> np.ndarray:
    """One logits row per token of the text, each from the window where the token has most context."""
    if len(windows) == 1:
        return logits[0]
    st = Stitcher(n_tokens)
    parts = [done[1] for w, lg in zip(windows, logits) if (done := st.add(w, lg)) is not None]
    return np.concatenate(parts + [st.finish()[1]])
