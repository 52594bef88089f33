"""Label ids of tokens from their scores: argmax (the transformers pipeline's way) or BIO-constrained Viterbi.

Viterbi picks the most probable label sequence that is valid BIO: `I-X` only right after `B-X` or `I-X`,
and never first. The allowed transitions come from the model's own label names (any `B-`/`I-` pairs),
not from a fixed tag list. When the argmax sequence is already valid it is the answer (no search);
otherwise a dynamic program over the log-probabilities finds it. `ViterbiStream` does the same for rows
that arrive window by window and hands out labels as soon as every surviving path agrees on them.
"""
from __future__ import annotations

from enum import Enum
from typing import Optional

import numpy as np


class Decode(str, Enum):
    """How each token's label is chosen from its scores."""

    ARGMAX = "argmax"
    VITERBI = "viterbi"

    @classmethod
    def parse(cls, value: "str | Decode") -> "Decode":
        """The decoder named `value`; ValueError listing the valid names otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"decode must be one of {', '.join(d.value for d in cls)}, not {value!r}") from None


class BIO:
    """The BIO transition rules of a label list, as index arrays for the dynamic program."""

    def __init__(self, labels: tuple[str, ...]):
        self.n = len(labels)
        index = {lab: i for i, lab in enumerate(labels)}
        inside = [i for i, lab in enumerate(labels) if lab.startswith("I-") and "B-" + lab[2:] in index]
        self.inside = np.array(inside, dtype=np.int64)  # I-X labels
        self.begin = np.array([index["B-" + labels[i][2:]] for i in inside], dtype=np.int64)  # their B-X
        self.free = np.array([i for i in range(self.n) if i not in set(inside)], dtype=np.int64)
        self.is_inside = np.zeros(self.n, bool)
        self.is_inside[self.inside] = True
        self.type_of = np.array([hash(lab[2:]) if lab[:2] in ("B-", "I-") else -i - 1
                                 for i, lab in enumerate(labels)], dtype=np.int64)

    def valid(self, ids: np.ndarray) -> bool:
        """Whether a label sequence is valid BIO."""
        if not len(ids):
            return True
        ins = self.is_inside[ids]
        if ins[0]:
            return False
        prev_same = self.type_of[ids[:-1]] == self.type_of[ids[1:]]
        return bool((~ins[1:] | prev_same).all())

    def start(self, logp: np.ndarray) -> np.ndarray:
        """DP scores of the first token."""
        s = logp.astype(np.float64, copy=True)
        s[self.inside] = -np.inf
        return s

    def step(self, s: np.ndarray, logp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """DP scores after one more token, and for each label the best previous label."""
        best = int(s.argmax())
        new = np.empty(self.n)
        back = np.full(self.n, best, dtype=np.int64)
        new[self.free] = s[best] + logp[self.free]
        b, i = s[self.begin], s[self.inside]
        from_begin = b >= i
        new[self.inside] = np.where(from_begin, b, i) + logp[self.inside]
        back[self.inside] = np.where(from_begin, self.begin, self.inside)
        return new, back

    def decode(self, logp: np.ndarray) -> np.ndarray:
        """The most probable valid label sequence for rows of log-probabilities."""
        ids = logp.argmax(-1)
        if self.valid(ids):
            return ids
        s = self.start(logp[0])
        backs = np.empty((len(logp), self.n), dtype=np.int64)
        for t in range(1, len(logp)):
            s, backs[t] = self.step(s, logp[t])
        out = np.empty(len(logp), dtype=np.int64)
        out[-1] = int(s.argmax())
        for t in range(len(logp) - 1, 0, -1):
            out[t - 1] = backs[t, out[t]]
        return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    x = logits.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def choose(logits: np.ndarray, decode: Decode, bio: Optional[BIO]) -> np.ndarray:
    """Label ids of rows of logits (the visible tokens of one text, in order)."""
    if decode is Decode.ARGMAX or not len(logits):
        return logits.argmax(-1)
    return bio.decode(log_softmax(logits))  # type: ignore[union-attr]


class ViterbiStream:
    """Viterbi over rows that arrive in order: `feed` returns the labels every surviving path agrees on."""

    def __init__(self, bio: BIO):
        self.bio = bio
        self.s: Optional[np.ndarray] = None
        self.backs: list[np.ndarray] = []  # back pointers of the rows not yet handed out (first has none)
        self.fixed_last: Optional[int] = None  # the label of the row before the held ones, once decided

    def feed(self, logits: np.ndarray) -> np.ndarray:
        """Take more rows; returns the labels now decided for the oldest held rows (maybe none)."""
        lp = log_softmax(logits)
        for row in lp:
            if self.s is None:
                self.s = self.bio.start(row)
                self.backs.append(np.arange(self.bio.n))
            else:
                self.s, back = self.bio.step(self.s, row)
                self.backs.append(back)
        return self._settled()

    def close(self) -> np.ndarray:
        """The labels of every row still held."""
        if self.s is None or not self.backs:
            return np.empty(0, dtype=np.int64)
        out = np.empty(len(self.backs), dtype=np.int64)
        out[-1] = int(self.s.argmax())
        for t in range(len(self.backs) - 1, 0, -1):
            out[t - 1] = self.backs[t][out[t]]
        self.backs = []
        return out

    def _settled(self) -> np.ndarray:
        """Labels of the held rows before the point where all paths from the current row merge."""
        if len(self.backs) < 2:
            return np.empty(0, dtype=np.int64)
        states = np.arange(self.bio.n)
        for t in range(len(self.backs) - 1, 0, -1):
            states = np.unique(self.backs[t][states])
            if len(states) == 1:
                # rows 0 .. t-1 are decided: trace the single path back from row t-1
                out = np.empty(t, dtype=np.int64)
                out[-1] = int(states[0])
                for u in range(t - 1, 0, -1):
                    out[u - 1] = self.backs[u][out[u]]
                self.backs = [np.full(self.bio.n, out[-1], dtype=np.int64)] + self.backs[t + 1:]
                return out  # row t is now the first held row; its own back pointer is never followed
        return np.empty(0, dtype=np.int64)
