"""Per-token logits -> entities, by the rules of transformers' TokenClassificationPipeline.

Softmax in float32; special tokens dropped; a token is a subword when its vocabulary string and its
slice of the text differ in length ([UNK] never is); `simple` and `none` label each token by its
argmax, `first | average | max` first fuse subwords into words; B-/I- grouping, where an `O` or a
new `B-` closes a group, with the group's mean score; `O` is left out.

`Aggregation` holds one configuration of all this (labels, strategy, decoder, the tokenizer's word rules).
Its `EntityStream` does the same for a long text whose rows arrive window by window: it looks at each row
once, cuts the rows where a new group starts (so no entity crosses the cut) and groups each piece alone,
so it holds a few thousand rows at a time, takes time linear in the text and gives exactly the entities
of the whole text.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

from .choices import Choice
from .decode import BIO, Constrained, Decode, ViterbiStream, choose
from .entity import Entity, make_entity
from .scheme import Tagging
from .tokens import Tokens

Join = Callable[[list[str]], str]
JOINED_HELD = 1 << 16  # single-token words remembered by `Aggregation.join_one` before it starts again


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


# A visible token whose chosen label is not O: (its place among the visible tokens, its token index, its label id).
# Adjacent visible places may join one group. A plain tuple: a text makes dozens of them.
Hit = tuple[int, int, int]


class Labelled(NamedTuple):
    """A word (word-level strategies) with its chosen label and that label's score, ready for grouping."""

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


def check_decode(strategy: Strategy, decode: Decode) -> None:
    """Refuse a decoder the strategy cannot use: Viterbi chooses token labels, word-level strategies word labels."""
    if decode is Decode.VITERBI and strategy not in (Strategy.NONE, Strategy.SIMPLE):
        raise ValueError(f"decode='viterbi' works with aggregation 'none' or 'simple', not {strategy.value!r}: "
                         "word-level strategies choose labels from word scores")


class Aggregation:
    """How one model's scores become entities: its labels, the strategy, the decoder and the tokenizer's word
    rules, configured once and used alike by short texts, streamed long texts and Viterbi."""

    def __init__(self, labels: tuple[str, ...], strategy: Strategy, join: Join, unk_id: int,
                 decode: Decode = Decode.ARGMAX, bio: "Optional[BIO | Constrained]" = None, *,
                 word_aware: bool = True, tagging: Optional[Tagging] = None):
        check_decode(strategy, decode)
        self.labels, self.strategy, self.join, self.unk_id, self.decode = labels, strategy, join, unk_id, decode
        self.word_aware = word_aware  # the tokenizer marks subwords itself (WordPiece's ##): see `_is_subword`
        self.token_level = strategy in (Strategy.NONE, Strategy.SIMPLE)
        self.bio = (bio or BIO(labels)) if decode is Decode.VITERBI else None
        self.tagging = tg = tagging or Tagging(labels)
        self.named = named = np.array([lab != "O" for lab in labels])
        self.named_list: list[bool] = named.tolist()
        self._joined: dict[str, str] = {}  # one token's string -> join([it]): most entities are one token
        # continues[prev][cur]: a group open at `prev` takes `cur` too, so no exact cut lies between them
        n = len(labels)
        if strategy is Strategy.NONE:  # every token is an entity of its own
            self.continues: list[list[bool]] = [[False] * n for _ in range(n)]
        elif self.token_level:  # an I- right after a token of its type
            self.continues = [[bool(named[p] and named[c] and tg.joins(labels[p], labels[c])) for c in range(n)]
                              for p in range(n)]
        else:  # a word of the same type that is not B-; a run of O words is dropped whole, so cuts inside it are exact
            self.continues = [[bool(named[c] and tg.joins(labels[p], labels[c])) for c in range(n)] for p in range(n)]

    def entities(self, text: str, tokens: Tokens, logits: np.ndarray, base: int = 0,
                 chosen: Optional[np.ndarray] = None) -> list[Entity]:
        """The entities of `tokens` from one logits row per token; `base` is the first token's index in the text.

        `chosen` gives the visible tokens' labels already decided (token-level strategies). Scores are always
        the model's probabilities of the chosen labels.
        """
        if self.token_level:
            return _token_entities(text, tokens, logits, self, base, self._named_tokens(tokens, logits, chosen))
        scores = softmax(logits.astype(np.float32, copy=False))
        return _group(_words(_pieces(text, tokens, scores, self.unk_id, self.word_aware), self.strategy, self.labels,
                             self.join), text, self)

    def _named_tokens(self, tokens: Tokens, logits: np.ndarray, chosen: Optional[np.ndarray]) -> list[Hit]:
        """The visible tokens whose chosen label is not O, in order. Without labels chosen already, the argmax
        is looked at in Python lists: for the tokens of one call (at most a window) that is cheaper than a chain
        of numpy calls."""
        if chosen is None and self.decode is Decode.ARGMAX:
            named, hits, j = self.named_list, [], 0
            for idx, (k, special) in enumerate(zip(logits.argmax(-1).tolist(), tokens.special.tolist(), strict=True)):
                if not special:
                    if named[k]:
                        hits.append((j, idx, k))
                    j += 1
            return hits
        visible = np.flatnonzero(~tokens.special)
        if chosen is None:
            chosen = choose(logits[visible], self.decode, self.bio)
        at = np.flatnonzero(self.named[chosen])
        return list(zip(at.tolist(), visible[at].tolist(), chosen[at].tolist()))

    def join_one(self, word: str) -> str:
        """`join([word])`, remembered: the same few thousand tokens start most entities."""
        found = self._joined.get(word)
        if found is None:
            if len(self._joined) >= JOINED_HELD:
                self._joined.clear()
            found = self._joined[word] = self.join([word])
        return found

    def stream(self, text: str, tokens: Tokens) -> "EntityStream":
        """An EntityStream for one long text whose logits rows arrive in text order."""
        return EntityStream(self, text, tokens)


def _pieces(text: str, tokens: Tokens, scores: np.ndarray, unk_id: int, word_aware: bool) -> list[Piece]:
    """The visible tokens, each marked as a subword or a word start, as the pipeline's `gather_pre_entities`."""
    out = []
    for idx in np.flatnonzero(~tokens.special).tolist():
        start, end = tokens.offsets[idx]
        word = text[start:end] if int(tokens.ids[idx]) == unk_id else tokens.strings[idx]
        out.append(Piece(word, scores[idx], start, end, _is_subword(text, tokens, idx, unk_id, word_aware)))
    return out


def _is_subword(text: str, tokens: Tokens, idx: int, unk_id: int, word_aware: bool) -> bool:
    """The pipeline's rule. A tokenizer with a continuing-subword prefix (WordPiece): a token is a subword when
    its string and its slice of the text differ in length. Any other (byte-level BPE, Unigram): when it does not
    start the text and no space is just before or at its start. The unknown token never is."""
    start, end = tokens.offsets[idx]
    if int(tokens.ids[idx]) == unk_id:
        return False
    if word_aware:
        return len(tokens.strings[idx]) != end - start
    return start > 0 and " " not in text[start - 1:start + 1]


def _token_entities(text: str, tokens: Tokens, logits: np.ndarray, how: Aggregation, base: int,
                    hits: list[Hit]) -> list[Entity]:
    """`none` and `simple`: the named visible tokens (special tokens are dropped, as by the pipeline), grouped:
    a token joins the group before it when it is the next visible token and its label continues the group's.
    Only these tokens' rows get a softmax (gathered row-major, as onnxruntime returns them), which gives them the
    numbers `softmax` of the whole array gives."""
    if not hits:
        return []
    rows = logits[[h[1] for h in hits]]
    if rows.dtype != np.float32:
        rows = rows.astype(np.float32)
    # softmax() on these rows, the chosen column (the ufuncs' reduce is what ndarray.max/sum call)
    shifted_exp = np.exp(rows - np.maximum.reduce(rows, axis=-1, keepdims=True))
    scores = (shifted_exp[range(len(hits)), [h[2] for h in hits]] / np.add.reduce(shifted_exp, axis=-1)).tolist()
    labels, unk_id, name = how.labels, how.unk_id, how.tagging.name
    offsets, strings, ids = tokens.offsets, tokens.strings, tokens.ids
    alone = how.strategy is Strategy.NONE  # every token is an entity of its own
    cont = how.continues
    ents: list[Entity] = []
    i, n = 0, len(hits)
    while i < n:
        _, idx, first = hits[i]  # the group's first token and its label id
        e = i + 1  # the group is hits[i:e]: each next hit continues the one before it
        while not alone and e < n and hits[e][0] == hits[e - 1][0] + 1 and cont[hits[e - 1][2]][hits[e][2]]:
            e += 1
        start, end = offsets[idx][0], offsets[hits[e - 1][1]][1]
        label = labels[first]
        if e - i == 1:
            word = text[start:end] if int(ids[idx]) == unk_id else strings[idx]
            if alone:
                ents.append(make_entity(label, start, end, scores[i], text[start:end], word, base + idx))
            else:
                ents.append(make_entity(name[label], start, end, scores[i], text[start:end], how.join_one(word)))
        else:
            words = []
            for _, t, _ in hits[i:e]:
                a, b = offsets[t]
                words.append(text[a:b] if int(ids[t]) == unk_id else strings[t])
            ents.append(make_entity(name[label], start, end, _mean(scores[i:e]), text[start:end], how.join(words)))
        i = e
    return ents


def _mean(vals: list[float]) -> float:
    """A group's mean score, as koner has always given it: the float64 mean of its float32 scores (the
    pipeline's `np.nanmean` of them is a float32 mean, which can differ in the 8th digit); NaN-aware."""
    return float(np.nanmean(vals)) if any(v != v for v in vals) else sum(vals) / len(vals)


def _entity(run: list[Labelled], text: str, how: Aggregation) -> Entity:
    """One group of words (word-level strategies) as an Entity with the group's mean score."""
    label = how.tagging.name[run[0].label]  # pipeline grouping: the label after its first `-` (`PER-B` gives `B`)
    start, end = run[0].start, run[-1].end
    if len(run) == 1:
        return make_entity(label, start, end, float(run[0].score), text[start:end], how.join_one(run[0].word))
    return make_entity(label, start, end, _mean([float(r.score) for r in run]), text[start:end],
                       how.join([r.word for r in run]))


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
        sc = word_scores([p.scores for p in g], strategy)
        k = int(sc.argmax())
        out.append(Labelled(labels[k], sc[k], join([p.word for p in g]), g[0].start, g[-1].end))
    return out


def word_scores(pieces: list[np.ndarray], strategy: Strategy) -> np.ndarray:
    """A word's label scores from its pieces' softmax rows, by the word strategy (`first`, `average`, `max`)."""
    if strategy is Strategy.FIRST:
        return pieces[0]
    if strategy is Strategy.MAX:
        return max(pieces, key=lambda sc: sc.max())
    return np.nanmean(np.stack(pieces), axis=0)  # Strategy.AVERAGE


def _group(items: list[Labelled], text: str, how: Aggregation) -> list[Entity]:
    """Grouping of labelled words: an O or a new B- (or another tag) closes a group; O groups are dropped."""
    tagging = how.tagging
    runs: list[list[Labelled]] = []
    for item in items:
        if runs and tagging.joins(runs[-1][-1].label, item.label):
            runs[-1].append(item)
        else:
            runs.append([item])
    return [_entity(run, text, how) for run in runs if not tagging.outside(run[0].label)]


class EntityStream:
    """The entities of one long text from its logits rows as they come, holding only a few thousand rows.

    Each row is looked at once, when it arrives: its label (token-level strategies: its argmax or its settled
    Viterbi label; word-level: its word's label, once the word is complete) says whether a new group starts
    there. Once `SEGMENT` rows are held the rows before the latest such start are grouped on their own, which
    gives exactly the whole text's entities; so time is linear in the text and the rows held are bounded by
    a segment plus the longest entity.
    """

    SEGMENT = 2048  # rows gathered before cutting

    def __init__(self, how: Aggregation, text: str, tokens: Tokens):
        self.how, self.text, self.tokens = how, text, tokens
        self.first = 0  # index of the first held row's token
        self.held: list[np.ndarray] = []
        self.n_held = 0
        self.cut = 0  # the latest held position where a new group starts (0: none found yet)
        self.viterbi = ViterbiStream(how.bio) if how.decode is Decode.VITERBI else None
        # token-level: held positions of the visible rows and their labels decided so far
        self.visible: list[int] = []
        self.decided: list[int] = []
        self.checked = 0  # decided labels already looked at
        # word-level: held positions where words start, their pieces' scores and labels of complete words
        self.starts: list[int] = []
        self.pieces: list[np.ndarray] = []  # softmax rows of the visible held rows, from the first word start on
        self.word_at: list[int] = []  # index into `pieces` of each word's first piece
        self.words: list[int] = []
        self.seen_word = False  # a word start was seen in the text (its first visible token starts a word)

    @property
    def held_rows(self) -> int:
        """Rows held now, waiting for a cut."""
        return self.n_held

    def feed(self, first: int, rows: np.ndarray) -> list[Entity]:
        """Take the rows of tokens first, first+1, ...; returns the entities that can no longer change."""
        assert first == self.first + self.n_held, "rows must arrive in text order"
        at = self.n_held
        self.held.append(rows)
        self.n_held += len(rows)
        visible = np.flatnonzero(~self.tokens.special[first:first + len(rows)])
        if self.how.token_level:
            self.visible += (visible + at).tolist()
            lab = self.viterbi.feed(rows[visible]) if self.viterbi is not None else rows[visible].argmax(-1)
            self.decided += lab.tolist()
            self._scan_tokens()
        else:
            self._scan_words(rows, visible, at)
        if self.n_held < self.SEGMENT or self.cut <= 0:
            return []
        return self._emit(self.cut)

    def close(self) -> list[Entity]:
        """The entities of the rows still held (call after the last rows)."""
        if not self.n_held:
            return []
        if self.viterbi is not None:
            self.decided += self.viterbi.close().tolist()
        rows = np.concatenate(self.held)
        out = self._entities(rows, self._chosen(len(self.decided)))
        self.held, self.n_held = [], 0
        return out

    def _scan_tokens(self) -> None:
        """Look at the labels decided since the last scan for tokens that start a new group."""
        cont, dec = self.how.continues, self.decided
        for k in range(max(1, self.checked), len(dec)):
            if not cont[dec[k - 1]][dec[k]]:
                self.cut = self.visible[k]
        self.checked = len(dec)

    def _scan_words(self, rows: np.ndarray, visible: np.ndarray, at: int) -> None:
        """Note new word starts; label each word once the next one starts, and cut where a new group starts."""
        toks, unk, how = self.tokens, self.how.unk_id, self.how
        scores = softmax(rows[visible].astype(np.float32, copy=False)) if len(visible) else rows[:0]
        for j, v in enumerate(visible.tolist()):
            idx = self.first + at + v
            if not self.seen_word or not _is_subword(self.text, toks, idx, unk, how.word_aware):
                if self.seen_word and self.starts:  # the word before this one is complete
                    self._label_word(len(self.starts) - 1)
                self.starts.append(at + v)
                self.word_at.append(len(self.pieces))
                self.seen_word = True
            if self.starts:
                self.pieces.append(scores[j])

    def _label_word(self, w: int) -> None:
        """Label complete word `w` (an index into `starts`) and note a cut before it if it starts a group."""
        lo = self.word_at[w]
        hi = self.word_at[w + 1] if w + 1 < len(self.starts) else len(self.pieces)
        k = int(word_scores(self.pieces[lo:hi], self.how.strategy).argmax())
        self.words.append(k)
        if w > 0 and not self.how.continues[self.words[w - 1]][k]:
            self.cut = self.starts[w]

    def _emit(self, cut: int) -> list[Entity]:
        """Group the rows before held position `cut` (where a new group starts) and keep the rest."""
        rows = np.concatenate(self.held)
        n_vis = int((~self.tokens.special[self.first:self.first + cut]).sum())
        out = self._entities(rows[:cut], self._chosen(n_vis))
        self.held, self.n_held, self.first = [rows[cut:]], len(rows) - cut, self.first + cut
        self.cut = 0
        if self.how.token_level:
            self.visible = [p - cut for p in self.visible[n_vis:]]
            self.decided, self.checked = self.decided[n_vis:], max(0, self.checked - n_vis)
        else:
            w = self.starts.index(cut)
            drop = self.word_at[w]
            self.starts = [p - cut for p in self.starts[w:]]
            self.word_at = [i - drop for i in self.word_at[w:]]
            self.pieces, self.words = self.pieces[drop:], self.words[w:]
        return out

    def _chosen(self, n_visible: int) -> Optional[np.ndarray]:
        if not self.how.token_level:
            return None
        return np.asarray(self.decided[:n_visible], np.int64)

    def _entities(self, rows: np.ndarray, chosen: Optional[np.ndarray]) -> list[Entity]:
        toks = self.tokens.slice(self.first, self.first + len(rows))
        return self.how.entities(self.text, toks, rows, base=self.first, chosen=chosen)
