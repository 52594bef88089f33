"""Label ids of tokens from their scores: argmax (the transformers pipeline's way) or BIO-constrained Viterbi.

Viterbi picks the most probable label sequence that is valid BIO: `I-X` only right after `B-X` or `I-X`,
and never first. The allowed transitions come from the model's own label names (any `B-`/`I-` pairs),
not from a fixed tag list. When the argmax sequence is already valid it is the answer (no search);
otherwise a dynamic program over the log-probabilities finds it. `ViterbiStream` does the same for rows
that arrive window by window and hands out labels as soon as every surviving path agrees on them.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .choices import Choice


class Decode(Choice):
    """How each token's label is chosen from its scores."""

    __option__ = "decode"
    ARGMAX = "argmax"
    VITERBI = "viterbi"


DECODES = tuple(d.value for d in Decode)


class BIO:
    """The BIO transition rules of a label list, laid out for a fast dynamic program.

    Internally labels are reordered as [labels free to follow anything (O, every B-, unpaired), then each
    type's I-], with each I- at the same offset as its B- in the second block, so one DP step is a few
    slice operations.
    """

    def __init__(self, labels: tuple[str, ...]):
        self.n = len(labels)
        index = {lab: i for i, lab in enumerate(labels)}
        inside = [i for i, lab in enumerate(labels) if lab.startswith("I-") and "B-" + lab[2:] in index]
        begin = [index["B-" + labels[i][2:]] for i in inside]
        others = [i for i in range(self.n) if i not in set(inside) and i not in set(begin)]
        self.order = np.array(others + begin + inside, dtype=np.int64)  # internal position -> label id
        self.k, self.n_other = len(inside), len(others)
        self.n_free = self.n_other + self.k
        self.inside = np.array(inside, dtype=np.int64)
        self.is_inside = np.zeros(self.n, bool)
        self.is_inside[self.inside] = True
        # each label's type number: B-X and I-X share X's; any other label is a type of its own
        types: dict[str, int] = {}
        self.type_of = np.array([types.setdefault(lab[2:] if lab[:2] in ("B-", "I-") else f"\0{i}", len(types))
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

    def start(self, lp: np.ndarray) -> np.ndarray:
        """DP scores of the first token (internal order)."""
        s = lp.copy()
        s[self.n_free:] = -np.inf
        return s

    def step(self, s: np.ndarray, lp: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
        """DP scores after one more token (internal order), the best previous position for the free labels,
        and for each I- whether its best previous label is its B- (else its I-)."""
        best = int(s.argmax())
        nf, no = self.n_free, self.n_other
        b, i = s[no:nf], s[nf:]
        from_begin = b >= i
        new = np.empty(self.n)
        new[:nf] = lp[:nf] + s[best]
        new[nf:] = np.maximum(b, i) + lp[nf:]
        return new, best, from_begin

    def last(self, s: np.ndarray) -> int:
        """The best final position (internal order): any label may end a BIO sequence."""
        return int(s.argmax())

    def back(self, pos: int, best: int, from_begin: np.ndarray) -> int:
        """The previous position on the best path into internal position `pos`."""
        if pos < self.n_free:
            return best
        j = pos - self.n_free
        return self.n_other + j if from_begin[j] else pos

    def internal(self, logp: np.ndarray) -> np.ndarray:
        """Rows of log-probabilities in the internal label order."""
        return logp[:, self.order]

    def decode(self, logits: np.ndarray) -> np.ndarray:
        """The most probable valid label sequence for rows of logits (or log-probabilities)."""
        ids = logits.argmax(-1)
        if self.valid(ids):
            return ids  # the unconstrained best is valid, so it is the answer
        lp = self.internal(log_softmax(logits))
        n, nf, no = len(lp), self.n_free, self.n_other
        bests = np.zeros(n, dtype=np.int64)
        flags = np.zeros((n, self.k), dtype=bool)
        bufs = (self.start(lp[0]), np.empty(self.n))
        pair = np.empty(self.k)
        for t in range(1, n):  # `step`, inlined on two reused buffers: this loop is the decoder's whole cost
            s, new = bufs[(t - 1) % 2], bufs[t % 2]
            best = int(s.argmax())
            b, i = s[no:nf], s[nf:]
            np.greater_equal(b, i, out=flags[t])
            np.maximum(b, i, out=pair)
            np.add(lp[t, :nf], s[best], out=new[:nf])
            np.add(pair, lp[t, nf:], out=new[nf:])
            bests[t] = best
        s = bufs[(n - 1) % 2]
        best_list, flag_rows = bests.tolist(), flags.tolist()
        pos = [0] * n
        pos[-1] = int(s.argmax())
        for t in range(n - 1, 0, -1):  # `back`, inlined on Python lists
            p = pos[t]
            if p < nf:
                pos[t - 1] = best_list[t]
            else:
                pos[t - 1] = no + p - nf if flag_rows[t][p - nf] else p
        return self.order[np.asarray(pos, dtype=np.int64)]


class Constrained:
    """Viterbi over any scheme's allowed transitions (`scheme.transitions`), with the same interface as `BIO`
    (which does IOB2 faster): BIOES/BILOU also forbid an entity left open at the end."""

    def __init__(self, allowed: np.ndarray, may_start: np.ndarray, may_end: np.ndarray):
        self.n = len(may_start)
        self.k = 0
        self.order = np.arange(self.n, dtype=np.int64)
        self.penalty = np.where(allowed, 0.0, -np.inf)  # [prev, cur]
        self.start_penalty = np.where(may_start, 0.0, -np.inf)
        self.end_penalty = np.where(may_end, 0.0, -np.inf)
        self.allowed, self.may_start, self.may_end = allowed, may_start, may_end

    def valid(self, ids: np.ndarray) -> bool:
        """Whether a label sequence is one the scheme allows."""
        if not len(ids):
            return True
        return bool(self.may_start[ids[0]] and self.may_end[ids[-1]] and self.allowed[ids[:-1], ids[1:]].all())

    def internal(self, logp: np.ndarray) -> np.ndarray:
        """Rows of log-probabilities (the order is the labels' own)."""
        return logp

    def start(self, lp: np.ndarray) -> np.ndarray:
        """DP scores of the first token."""
        return lp + self.start_penalty

    def step(self, s: np.ndarray, lp: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        """DP scores after one more token and each label's best previous label."""
        cand = s[:, None] + self.penalty
        back = cand.argmax(0)
        return cand[back, np.arange(self.n)] + lp, back, None

    def back(self, pos: int, back: np.ndarray, _unused: None = None) -> int:
        """The previous label on the best path into label `pos`."""
        return int(back[pos])

    def last(self, s: np.ndarray) -> int:
        """The best final label (one that may end a sequence)."""
        return int((s + self.end_penalty).argmax())

    def decode(self, logits: np.ndarray) -> np.ndarray:
        """The most probable allowed label sequence for rows of logits."""
        ids = logits.argmax(-1)
        if self.valid(ids):
            return ids
        lp = log_softmax(logits)
        s = self.start(lp[0])
        backs = []
        for t in range(1, len(lp)):
            s, back, _ = self.step(s, lp[t])
            backs.append(back)
        pos = [self.last(s)]
        for back in reversed(backs):
            pos.append(int(back[pos[-1]]))
        return np.asarray(pos[::-1], dtype=np.int64)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    x = logits.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def choose(logits: np.ndarray, decode: Decode, bio: "Optional[BIO | Constrained]") -> np.ndarray:
    """Label ids of rows of logits (the visible tokens of one text, in order)."""
    if decode is Decode.ARGMAX or not len(logits):
        return logits.argmax(-1)
    return bio.decode(logits)  # type: ignore[union-attr]


class ViterbiStream:
    """Viterbi over rows that arrive in order: `feed` returns the labels every surviving path agrees on."""

    def __init__(self, bio: "BIO | Constrained"):
        self.bio = bio
        self.s: Optional[np.ndarray] = None
        self.steps: list[tuple[int, np.ndarray]] = []  # per held row: (best, from_begin); the first's unused

    def feed(self, logits: np.ndarray) -> np.ndarray:
        """Take more rows; returns the labels now decided for the oldest held rows (maybe none)."""
        lp = self.bio.internal(log_softmax(logits))
        for row in lp:
            if self.s is None:
                self.s = self.bio.start(row)
                self.steps.append((0, np.zeros(self.bio.k, bool)))
            else:
                self.s, best, flags = self.bio.step(self.s, row)
                self.steps.append((best, flags))
        return self._settled()

    def close(self) -> np.ndarray:
        """The labels of every row still held."""
        if self.s is None or not self.steps:
            return np.empty(0, dtype=np.int64)
        out = self._trace(len(self.steps), self.bio.last(self.s))
        self.steps = []
        return out

    def _trace(self, n: int, last: int) -> np.ndarray:
        """Labels of held rows 0 .. n-1 on the best path that is at internal position `last` in row n-1."""
        pos = np.empty(n, dtype=np.int64)
        pos[-1] = last
        for t in range(n - 1, 0, -1):
            pos[t - 1] = self.bio.back(int(pos[t]), *self.steps[t])
        return self.bio.order[pos]

    def _settled(self) -> np.ndarray:
        """Labels of the held rows before the point where all paths from the current row merge."""
        if len(self.steps) < 2:
            return np.empty(0, dtype=np.int64)
        states = set(range(self.bio.n))
        for t in range(len(self.steps) - 1, 0, -1):
            states = {self.bio.back(p, *self.steps[t]) for p in states}
            if len(states) == 1:  # every path runs through this position of row t-1: rows 0..t-1 are decided
                out = self._trace(t, states.pop())
                self.steps = self.steps[t:]  # row t is now the first held row; its step is never followed
                return out
        return np.empty(0, dtype=np.int64)
