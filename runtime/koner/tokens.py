"""Text -> tokens (WordPiece, byte-level BPE or Unigram) with character offsets, through the `tokenizers` library."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
from tokenizers import Tokenizer

from .errors import TokenizerError

_SURROGATE = re.compile("[\ud800-\udfff]")
# Texts longer than this are tokenized in pieces of about this many characters, into compact arrays (see `encode`).
LONG_TEXT_CHARS = 1 << 15
# Characters next to which a space-splitting pre-tokenizer may split a text (more than it does: each cut next
# to one is checked with the tokenizer itself): anything but letters and digits, and CJK ideographs, which
# BERT's normalizer sets apart as words of their own.
_MAY_SPLIT = re.compile("[^\\w]|_|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_REACH = 512  # how far past a piece's size a cut is looked for before one is made inside a word
_TRIES = 32  # cuts checked with the tokenizer per piece, each way


def encodable(text: str) -> str:
    """`text` with lone surrogates (from broken decoding) as U+FFFD: same length, so offsets hold."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


class OffsetArray(Sequence):
    """Character offsets held as an int64 [n, 2] array; items are (start, end) tuples of Python ints."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return OffsetArray(self.array[i])
        start, end = self.array[i].tolist()
        return start, end


class TokenStrings(Sequence):
    """Token strings looked up from their ids on demand instead of being held."""

    def __init__(self, ids: np.ndarray, lookup: Callable[[int], str]):
        self.ids, self._lookup = ids, lookup

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return TokenStrings(self.ids[i], self._lookup)
        return self._lookup(int(self.ids[i]))


@dataclass(frozen=True)
class Tokens:
    """One text's tokens, [CLS] and [SEP] included (or a slice of them)."""

    ids: np.ndarray  # int64 [n]
    offsets: Sequence[tuple[int, int]]  # character offsets into the text
    special: np.ndarray  # bool [n]
    strings: Sequence[str]

    def __len__(self) -> int:
        return len(self.ids)

    def slice(self, start: int, stop: int) -> "Tokens":
        """Tokens [start, stop) of this sequence, offsets still into the whole text."""
        return Tokens(self.ids[start:stop], self.offsets[start:stop], self.special[start:stop],
                      self.strings[start:stop])


@dataclass(frozen=True)
class NormalizerFlags:
    """What a tokenizer's normalizer does to text that matters to koner."""

    lowercase: bool
    strips_accents: Optional[str]  # the normalizer type that strips accents (decomposing Hangul), or None


def normalizer_flags(spec: Optional[dict]) -> NormalizerFlags:
    """Read a tokenizer.json `normalizer` section (nested sequences included)."""
    lowercase, strips = False, None
    for n in _normalizers(spec):
        kind = n.get("type")
        if kind == "StripAccents" or kind in ("NFD", "NFKD") or (kind == "BertNormalizer" and (
                n.get("strip_accents") or (n.get("strip_accents") is None and n.get("lowercase")))):
            strips = strips or kind
        lowercase = lowercase or kind == "Lowercase" or (kind == "BertNormalizer" and bool(n.get("lowercase")))
    return NormalizerFlags(lowercase, strips)


def _normalizers(spec) -> list[dict]:
    if not spec:
        return []
    if spec.get("type") == "Sequence":
        return [n for s in spec.get("normalizers", []) for n in _normalizers(s)]
    return [spec]


class TextTokenizer:
    """The model's tokenizer, loaded from tokenizer.json and checked to keep case and accents."""

    def __init__(self, path: Path, *, lowercase: bool = False, unk_id: Optional[int] = None):
        if not path.is_file():
            raise TokenizerError(path, "missing; re-export the model with `koner export`")
        try:
            self._tok = Tokenizer.from_file(str(path))
            normalizer = self._tok.normalizer
            spec = json.loads(normalizer.__getstate__()) if normalizer is not None else None
            pre = self._tok.pre_tokenizer
            pre_spec = json.loads(pre.__getstate__()) if pre is not None else {}
            model_spec = _model_spec(self._tok.model)
        except Exception as exc:  # tokenizers raises plain Exception on bad files
            raise TokenizerError(path, f"cannot be read ({exc}); re-export the model with `koner export`") from None
        self._tok.no_truncation()
        self._tok.no_padding()
        _check_normalizer(path, normalizer_flags(spec), lowercase)
        # BERT's pre-tokenizer never joins across a space, so a long text may be tokenized piece by piece
        self._splits_at_spaces = pre_spec.get("type") in ("BertPreTokenizer", "Whitespace", "WhitespaceSplit")
        # WordPiece makes a word longer than this one unknown token: two such halves of a word join into one
        self._max_word = model_spec.get("max_input_chars_per_word") if model_spec.get("type") == "WordPiece" else None
        self.path = path
        self.vocab_size = _vocab_size(self._tok)
        self.unk_id = unk_id if unk_id is not None else _unk_id(self._tok, model_spec)
        # the tokens the tokenizer wraps every text in ([CLS] ... [SEP], <s> ... </s>)
        wrap = self._tok.encode("")
        if len(wrap.ids) != 2 or wrap.special_tokens_mask != [1, 1]:
            raise TokenizerError(path, f"wraps a text in {wrap.tokens or 'no special tokens'}; koner needs one start "
                                       "and one end token ([CLS] ... [SEP] or <s> ... </s>): re-export the model")
        self.cls_id, self.sep_id = wrap.ids
        # the transformers pipeline's word rule: a tokenizer with a continuing-subword prefix (WordPiece's ##)
        # marks subwords itself; for any other (byte-level BPE, Unigram) a token continues a word when no
        # space touches its start
        self.word_aware = bool(model_spec.get("continuing_subword_prefix"))
        self.decoder = self._tok.decoder


    def max_id(self) -> int:
        """The highest id this tokenizer can give, added tokens included (its ids need not be contiguous; this
        copies the vocabulary, so a caller that needs it often should remember it)."""
        vocab = self._tok.get_vocab(with_added_tokens=True)
        return max(max(vocab.values(), default=0), self.vocab_size - 1)

    def encode(self, text: str) -> Tokens:
        """Tokenize one text, whole: no truncation. A long text is held in compact arrays."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        if len(text) > LONG_TEXT_CHARS and self._splits_at_spaces:
            return self._encode_long(encodable(text))
        try:
            enc = self._tok.encode(text)
        except TypeError:  # lone surrogates, which tokenizers refuses: see `encodable`
            clean = encodable(text)
            if clean is text:
                raise
            enc = self._tok.encode(clean)
        return self._tokens(enc)

    def encode_batch(self, texts: list[str]) -> list[Tokens]:
        """Tokenize several texts, whole."""
        if any(len(t) > LONG_TEXT_CHARS for t in texts):
            return [self.encode(t) for t in texts]
        return [self._tokens(e) for e in self._tok.encode_batch([encodable(t) for t in texts])]

    def _tokens(self, enc) -> Tokens:
        """Tokens of one encoding; strings are the vocabulary's (`id_to_token`, as transformers'
        `convert_ids_to_tokens`), not the encoding's, which shows an added token's stripped space (` <mask>`)."""
        ids = np.asarray(enc.ids, dtype=np.int64)
        return Tokens(ids=ids, offsets=enc.offsets, special=np.asarray(enc.special_tokens_mask, dtype=bool),
                      strings=TokenStrings(ids, self._tok.id_to_token))

    def _encode_long(self, text: str, size: int = LONG_TEXT_CHARS) -> Tokens:
        """Tokens of a long text, tokenized in pieces of about LONG_TEXT_CHARS characters, as arrays.

        Each cut lies where the tokenizer's pre-tokenizer splits the text anyway (a space, punctuation), checked
        with the tokenizer, so the tokens are the ones of the whole text and memory stays bounded. Where no such
        place is near (a run of letters longer than a piece), the cut lies inside a word: WordPiece makes such
        a word (longer than its `max_input_chars_per_word`) one unknown token, and the unknown tokens of its
        two halves are joined into that one token again.
        """
        ids = [np.array([self.cls_id], np.int64)]
        offsets = [np.zeros((1, 2), np.int64)]
        join = False  # the last cut lies inside a word, and the piece before it ends in that word's unknown token
        for start, end, inside in self._pieces(text, size):
            enc = self._tok.encode(text[start:end], add_special_tokens=False)
            piece_ids = np.asarray(enc.ids, np.int64)
            piece_offsets = np.asarray(enc.offsets, np.int64).reshape(-1, 2) + start
            del enc
            if not len(piece_ids):
                join = False
                continue
            last = self._long_unknown(text, piece_ids[-1], *piece_offsets[-1])
            if join and self._long_unknown(text, piece_ids[0], *piece_offsets[0]):
                offsets[-1][-1, 1] = piece_offsets[0, 1]  # the word's two halves: one unknown token, as whole
                piece_ids, piece_offsets = piece_ids[1:], piece_offsets[1:]
            join = inside and last
            if len(piece_ids):
                ids.append(piece_ids)
                offsets.append(piece_offsets)
        ids.append(np.array([self.sep_id], np.int64))
        offsets.append(np.zeros((1, 2), np.int64))
        all_ids = np.concatenate(ids)
        special = np.zeros(len(all_ids), bool)
        special[[0, -1]] = True
        return Tokens(all_ids, OffsetArray(np.concatenate(offsets)), special, TokenStrings(all_ids, self._tok.id_to_token))

    def _long_unknown(self, text: str, token: int, start: int, end: int) -> bool:
        """True when a token is WordPiece's unknown token for a word (part) longer than a word may be."""
        return token == self.unk_id and self._long(text[start:end])

    def _long(self, word: str) -> bool:
        """True when a word (part) has more characters than WordPiece takes in a word, once normalized."""
        if self._max_word is None:
            return False
        normalizer = self._tok.normalizer
        return len(normalizer.normalize_str(word) if normalizer is not None else word) > self._max_word

    def _pieces(self, text: str, size: int) -> Iterator[tuple[int, int, bool]]:
        """(start, end, inside) pieces of at most `size` + `_REACH` characters that cover `text`; `inside`: the
        cut at `end` lies inside a word too long for WordPiece on both sides (see `_inside_long_word`)."""
        pos, n = 0, len(text)
        while n - pos > size:
            end = pos + size
            cut = next((c for c in _cuts(text, end, pos + size // 2, -1) if self._splits_at(text, c)), None)
            if cut is None:
                cut = next((c for c in _cuts(text, end + 1, end + _REACH, 1) if self._splits_at(text, c)), None)
            if cut is not None:
                yield pos, cut, False
                pos = cut
                continue
            # a run of letters: cut inside a long word; where none is found either, tokens may differ at the cut
            step = max(1, size // 2 // _TRIES)
            cut = next((c for c in range(end, pos + size // 2, -step) if self._inside_long_word(text, pos, c)), None)
            yield pos, end if cut is None else cut, cut is not None
            pos = end if cut is None else cut
        yield pos, n, False

    def _inside_long_word(self, text: str, start: int, cut: int) -> bool:
        """True when `cut` lies inside one word with more than WordPiece's `max_input_chars_per_word` characters
        on each side of it (on its left, after `start`, where its piece starts): tokenized in pieces there, each
        half is one unknown token, and the two are joined into the whole word's."""
        if self._max_word is None:
            return False
        lo = max(start, cut - 4 * self._max_word)
        part = text[lo:cut + 4 * self._max_word]
        enc = self._tok.encode(part, add_special_tokens=False)
        at = cut - lo
        for token, (first, end) in zip(enc.ids, enc.offsets):
            if first < at < end:  # the word around the cut (as far as `part` shows it)
                return token == self.unk_id and self._long(part[first:at]) and self._long(part[at:end])
        return False

    def _splits_at(self, text: str, cut: int) -> bool:
        """True when the tokenizer ends a word at `cut`: tokenized in two pieces there, the text has its tokens."""
        lo = max(0, cut - 16)
        enc = self._tok.encode(text[lo:cut + 16], add_special_tokens=False)
        at, before, after = cut - lo, None, None
        for (start, end), word in zip(enc.offsets, enc.word_ids):
            if start < at < end:
                return False
            if end <= at:
                before = word
            elif after is None:
                after = word
        return before is not None and after is not None and before != after

    def join(self, pieces: list[str]) -> str:
        """Tokens back to a string, as transformers' `convert_tokens_to_string` does."""
        pieces = [encodable(p) for p in pieces]
        return self.decoder.decode(pieces) if self.decoder is not None else " ".join(pieces)


def _cuts(text: str, first: int, last: int, step: int) -> Iterator[int]:
    """Places from `first` to `last` (either way: `step` 1 or -1) next to a character a pre-tokenizer may split
    at, nearest `first` first; at most `_TRIES` of them."""
    lo, hi = (first, last) if step > 0 else (last, first)
    lo, hi = max(lo, 1), min(hi, len(text) - 1)
    if lo > hi:
        return
    found = {c for m in _MAY_SPLIT.finditer(text, lo - 1, hi + 1) for c in (m.start(), m.start() + 1)
             if lo <= c <= hi}
    yield from sorted(found, reverse=step < 0)[:_TRIES]


def _vocab_size(tok: Tokenizer) -> int:
    """One past the highest token id (ids are contiguous), found without copying the vocabulary."""
    lo, hi = 0, 1
    while tok.id_to_token(hi) is not None:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # id_to_token(lo) exists, id_to_token(hi) does not
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if tok.id_to_token(mid) is not None else (lo, mid)
    return hi


def _model_spec(model) -> dict:
    """The tokenizer model's settings koner reads (type, unknown token, subword prefix, longest word).

    WordPiece, BPE and WordLevel expose them as attributes; serializing such a model copies its whole vocabulary
    into a JSON string and a dict (35,000 entries: 6-7 MB of RSS that stays with the process after they are
    freed), so only a model without those attributes (Unigram, whose `unk_id` only its state holds) is read that
    way."""
    kind = type(model).__name__
    if kind not in ("WordPiece", "BPE", "WordLevel"):
        return json.loads(model.__getstate__())
    spec: dict = {"type": kind, "unk_token": getattr(model, "unk_token", None)}
    if kind != "WordLevel":
        spec["continuing_subword_prefix"] = model.continuing_subword_prefix
    if kind == "WordPiece":
        spec["max_input_chars_per_word"] = model.max_input_chars_per_word
    return spec


def _unk_id(tok: Tokenizer, model_spec: dict) -> int:
    """The id of the unknown token, from the tokenizer model (-1 when it has none: byte-level BPE)."""
    if isinstance(model_spec.get("unk_id"), int):
        return model_spec["unk_id"]
    found = tok.token_to_id(model_spec["unk_token"]) if model_spec.get("unk_token") else None
    return -1 if found is None else found


def _check_normalizer(path: Path, flags: NormalizerFlags, lowercase: bool) -> None:
    if flags.strips_accents:
        raise TokenizerError(path, f"its {flags.strips_accents} normalizer strips accents, which decomposes Hangul "
                                   "into jamo; use the tokenizer the model was exported with (export refuses such "
                                   "tokenizers: set strip_accents to false in the checkpoint's tokenizer files)")
    if flags.lowercase and not lowercase:
        raise TokenizerError(path, "its normalizer lower-cases text but koner.json says the model is cased; "
                                   "re-export the model with `koner export`")
