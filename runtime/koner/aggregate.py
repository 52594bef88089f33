"""Per-token logits -> entities, by the rules of transformers' TokenClassificationPipeline.

Softmax in float32; special tokens dropped; a token is a subword when its vocabulary string and its
slice of the text differ in length ([UNK] never is); `simple` and `none` label each token by its
argmax, `first | average | max` first fuse subwords into words; B-/I- grouping, where an `O` or a
new `B-` closes a group, with the group's mean score; `O` is left out.

`EntityStream` does the same for a long text whose rows arrive window by window: it cuts the rows at
a word that every strategy labels `O` (where no entity can continue) and groups each piece alone, so
it holds a few thousand rows at a time and gives exactly the entities of the whole text.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

from .choices import Choice
from .decode import BIO, Decode, ViterbiStream, choose
from .entity import Entity
from .tokens import Tokens

Join = Callable[[list[str]], str]


class Strategy(Choice):
    """How tokens become entities: the transformers pipeline's `aggregation_strategy` values."""

    __option__ = "aggregation"
    NONE = "none"
    SIMPLE = "simple"
    FIRST = "first"
    AVERAGE = "average"
    MAX = "max"


STRATEGIES = tuple(s.value for s in Strategy)


class Piece(NamedTuple):
    """A visible token (subword strategies: before fusing into words) with its softmax scores."""

    word: str  # the token string ([UNK]: the text it covers)
    scores: np.ndarray  # float32 [labels]
    start: int
    end: int
    is_subword: bool


class Labelled(NamedTuple):
    """A token or word with its chosen label and that label's score, ready for B-/I- grouping."""

    label: str
    score: float
    word: str
    start: int
    end: int


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed as the pipeline computes it."""
    maxes = np.max(logits, axis=-1, keepdims=True)
    shifted_exp = np.exp(logits - maxes)
    return shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)


def _tag(label: str) -> tuple[str, str]:
    """('B' | 'I', entity type) of a label; a label without a prefix counts as inside."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def entities(text: str, tokens: Tokens, logits: np.ndarray, labels: tuple[str, ...], strategy: Strategy,
             join: Join, unk_id: int, base: int = 0, decode: Decode = Decode.ARGMAX, bio: Optional[BIO] = None,
             chosen: Optional[np.ndarray] = None) -> list[Entity]:
    """The entities of `tokens` from one logits row per token; `base` is the first token's index in the text.

    `decode` picks each token's label (`none` and `simple` only; Viterbi needs `bio`); `chosen` gives the
    visible tokens' labels already decided. Scores are always the model's probabilities of those labels.
    """
    scores = softmax(logits.astype(np.float32, copy=False))
    if strategy in (Strategy.NONE, Strategy.SIMPLE):
        visible = np.flatnonzero(~tokens.special)
        if chosen is None:
            chosen = choose(logits[visible], decode, bio)
        return _token_entities(text, tokens, scores, labels, strategy, join, unk_id, base, visible, chosen)
    if decode is not Decode.ARGMAX:
        raise ValueError(f"decode={decode.value!r} works with aggregation 'none' or 'simple', not {strategy.value!r}")
    return _group(_words(_pieces(text, tokens, scores, unk_id), strategy, labels, join), text, join)


def _pieces(text: str, tokens: Tokens, scores: np.ndarray, unk_id: int) -> list[Piece]:
    """The visible tokens, each marked as a subword or a word start, as the pipeline's `gather_pre_entities`."""
    out = []
    for idx in np.flatnonzero(~tokens.special).tolist():
        start, end = tokens.offsets[idx]
        word = text[start:end] if int(tokens.ids[idx]) == unk_id else tokens.strings[idx]
        out.append(Piece(word, scores[idx], start, end, _is_subword(tokens, idx, unk_id)))
    return out


def _is_subword(tokens: Tokens, idx: int, unk_id: int) -> bool:
    """The pipeline's rule: a token is a subword when its string and its slice of the text differ in length;
    [UNK] never is."""
    start, end = tokens.offsets[idx]
    return int(tokens.ids[idx]) != unk_id and len(tokens.strings[idx]) != end - start


def _token_entities(text: str, tokens: Tokens, scores: np.ndarray, labels: tuple[str, ...], strategy: Strategy,
                    join: Join, unk_id: int, base: int, visible: np.ndarray, best: np.ndarray) -> list[Entity]:
    """`none` and `simple`: each visible token (special tokens are dropped, as by the pipeline) labelled by
    `best`; only tokens not labelled O are visited."""
    named = np.flatnonzero(np.asarray([lab != "O" for lab in labels])[best])
    ents: list[Entity] = []
    run: list[Labelled] = []  # the open group
    prev = -2
    for j in named.tolist():
        idx = int(visible[j])
        k = int(best[j])
        label = labels[k]
        start, end = tokens.offsets[idx]
        word = text[start:end] if int(tokens.ids[idx]) == unk_id else tokens.strings[idx]
        item = Labelled(label, scores[idx, k], word, start, end)
        if strategy is Strategy.NONE:
            ents.append(Entity(label=label, start=start, end=end, score=float(item.score), text=text[start:end],
                               word=word, index=base + idx))
            continue
        # a token joins the open group when it follows it directly with an I- of the same tag
        if run and j == prev + 1 and _tag(label) == ("I", _tag(run[-1].label)[1]):
            run.append(item)
        else:
            if run:
                ents.append(_entity(run, text, join))
            run = [item]
        prev = j
    if run:
        ents.append(_entity(run, text, join))
    return ents


def _entity(run: list[Labelled], text: str, join: Join) -> Entity:
    """One group of tokens (or words) as an Entity with the group's mean score."""
    label = _tag(run[0].label)[1]
    if len(run) == 1:
        score = float(run[0].score)
    else:  # the pipeline's np.mean(np.nanmean(scores)); scores of finite logits have no NaN
        vals = [float(r.score) for r in run]
        score = float(np.nanmean(vals)) if any(v != v for v in vals) else sum(vals) / len(vals)
    start, end = run[0].start, run[-1].end
    return Entity(label=label, start=start, end=end, score=score, text=text[start:end],
                  word=join([r.word for r in run]))


def _words(pieces: list[Piece], strategy: Strategy, labels: tuple[str, ...], join: Join) -> list[Labelled]:
    """Subwords fused into words, each labelled by the word strategy (`first`, `average` or `max`)."""
    groups: list[list[Piece]] = []
    for p in pieces:
        if groups and p.is_subword:
            groups[-1].append(p)
        else:
            groups.append([p])
    out = []
    for g in groups:
        word = join([p.word for p in g])
        if strategy is Strategy.FIRST:
            sc = g[0].scores
        elif strategy is Strategy.MAX:
            sc = max(g, key=lambda p: p.scores.max()).scores
        else:  # Strategy.AVERAGE
            sc = np.nanmean(np.stack([p.scores for p in g]), axis=0)
        k = int(sc.argmax())
        out.append(Labelled(labels[k], sc[k], word, g[0].start, g[-1].end))
    return out


def _group(items: list[Labelled], text: str, join: Join) -> list[Entity]:
    """B-/I- grouping of labelled words: an O or a new B- (or another tag) closes a group; O groups are dropped."""
    runs: list[list[Labelled]] = []
    for item in items:
        bi, tag = _tag(item.label)
        if runs and tag == _tag(runs[-1][-1].label)[1] and bi != "B":
            runs[-1].append(item)
        else:
            runs.append([item])
    return [_entity(run, text, join) for run in runs if _tag(run[0].label)[1] != "O"]


class EntityStream:
    """The entities of one long text from its logits rows as they come, holding only a few thousand rows."""

    SEGMENT = 2048  # rows gathered before looking for a cut

    def __init__(self, text: str, tokens: Tokens, labels: tuple[str, ...], strategy: Strategy, join: Join,
                 unk_id: int, decode: Decode = Decode.ARGMAX, bio: Optional[BIO] = None):
        self.text, self.tokens, self.labels, self.strategy = text, tokens, labels, strategy
        self.join, self.unk_id = join, unk_id
        self.o = labels.index("O") if "O" in labels else -1
        self.first = 0  # index of the first held row's token
        self.held: list[np.ndarray] = []
        self.n_held = 0
        # Viterbi: the labels of held visible rows decided so far (every surviving path agrees on them)
        self.viterbi = ViterbiStream(bio) if decode is Decode.VITERBI else None
        self.decided: list[int] = []

    def feed(self, first: int, rows: np.ndarray) -> list[Entity]:
        """Take the rows of tokens first, first+1, ...; returns the entities that can no longer change."""
        assert first == self.first + self.n_held, "rows must arrive in text order"
        self.held.append(rows)
        self.n_held += len(rows)
        if self.viterbi is not None:
            visible = ~self.tokens.special[first:first + len(rows)]
            self.decided += self.viterbi.feed(rows[visible]).tolist()
        if self.n_held < self.SEGMENT or self.o < 0:
            return []
        rows_all = np.concatenate(self.held)
        cut = self._cut(rows_all) if self.viterbi is None else self._viterbi_cut()
        if cut is None:
            self.held = [rows_all]
            return []
        out = self._entities(rows_all[:cut])
        self.held, self.n_held, self.first = [rows_all[cut:]], len(rows_all) - cut, self.first + cut
        return out

    def close(self) -> list[Entity]:
        """The entities of the rows still held (call after the last rows)."""
        if not self.n_held:
            return []
        if self.viterbi is not None:
            self.decided += self.viterbi.close().tolist()
        out = self._entities(np.concatenate(self.held))
        self.held, self.n_held = [], 0
        return out

    def _entities(self, rows: np.ndarray) -> list[Entity]:
        toks = self.tokens.slice(self.first, self.first + len(rows))
        chosen = None
        if self.viterbi is not None:
            n_visible = int((~toks.special).sum())
            chosen, self.decided = np.asarray(self.decided[:n_visible], np.int64), self.decided[n_visible:]
        return entities(self.text, toks, rows, self.labels, self.strategy, self.join, self.unk_id, base=self.first,
                        chosen=chosen)

    def _viterbi_cut(self) -> Optional[int]:
        """The last held position whose (decided) Viterbi label is O, past the first row, or None."""
        special = self.tokens.special[self.first:self.first + self.n_held]
        visible_at = np.flatnonzero(~special)[:len(self.decided)]  # held positions of the decided rows
        for k in range(len(visible_at) - 1, 0, -1):
            if self.decided[k] == self.o:
                return int(visible_at[k])
        return None

    def _cut(self, rows: np.ndarray) -> Optional[int]:
        """The last held position where a whole word starts that every token of is labelled O, or None.

        No group continues across such a word under any strategy (an O word closes groups and is dropped),
        so the rows before it can be grouped on their own. The word must end inside the held rows.
        """
        is_o = rows.argmax(-1) == self.o
        toks = self.tokens
        starts = []  # held positions that start a word (not special, not a subword)
        for i in range(1, len(rows)):
            idx = self.first + i
            if not toks.special[idx] and not _is_subword(toks, idx, self.unk_id):
                starts.append(i)
        for a, b in zip(reversed(starts[:-1]), reversed(starts[1:])):
            if is_o[a:b].all():
                return a
        return None
