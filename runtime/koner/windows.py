"""Token sequences -> model-sized windows, and window logits -> one row per token.

A text whose tokens fit the model (max_length, [CLS] and [SEP] included) is one window, fed exactly as
the transformers pipeline feeds it. A longer text is cut into windows of max_length - 2 tokens that
overlap by `overlap` tokens; each token takes its logits from the window in which it sits farthest
from a cut edge, so every token keeps at least overlap // 2 tokens of context on each side that the
text has. No token is dropped, and entities are grouped afterwards over the whole text, so one that
crosses a window edge comes out whole.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tokens import Tokens


@dataclass(frozen=True)
class Window:
    """One model input: token ids with [CLS]/[SEP], and where its content starts in the text's tokens."""

    ids: np.ndarray
    start: int  # index of the first content token in the text's token sequence (1 = just after [CLS])


def plan(tokens: Tokens, max_length: int, overlap: int) -> list[Window]:
    """The windows that cover every token of one text."""
    n = len(tokens.ids)
    if n <= max_length:
        return [Window(tokens.ids, 1)]
    content = tokens.ids[1:-1]
    width = max_length - 2
    stride = width - overlap
    starts = list(range(0, len(content) - width, stride)) + [len(content) - width]
    cls, sep = tokens.ids[:1], tokens.ids[-1:]
    return [Window(np.concatenate([cls, content[s:s + width], sep]), s + 1) for s in starts]


def stitch(n_tokens: int, windows: list[Window], logits: list[np.ndarray]) -> np.ndarray:
    """One logits row per token of the text, each from the window where the token has most context."""
    if len(windows) == 1:
        return logits[0]
    out = np.empty((n_tokens, logits[0].shape[-1]), dtype=logits[0].dtype)
    best = np.full(n_tokens, -1, dtype=np.int64)
    for w, lg in zip(windows, logits):
        width = len(w.ids) - 2
        pos = np.arange(w.start, w.start + width)
        local = np.arange(width)
        far = n_tokens  # the text's own start and end are no cut: context there is all there is
        left = local if w.start > 1 else np.full(width, far)
        right = width - 1 - local if w.start + width < n_tokens - 1 else np.full(width, far)
        margin = np.minimum(left, right)
        take = margin > best[pos]
        out[pos[take]] = lg[1:-1][take]
        best[pos[take]] = margin[take]
    out[0] = logits[0][0]
    out[-1] = logits[-1][-1]
    return out
