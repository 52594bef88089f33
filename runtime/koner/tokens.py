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
# Texts longer than this are tokenized in pieces cut at spaces, into compact arrays (see `encode`).
LONG_TEXT_CHARS = 1 << 15


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
            model_spec = json.loads(self._tok.model.__getstate__())
        except Exception as exc:  # tokenizers raises plain Exception on bad files
            raise TokenizerError(path, f"cannot be read ({exc}); re-export the model with `koner export`") from None
        self._tok.no_truncation()
        self._tok.no_padding()
        _check_normalizer(path, normalizer_flags(spec), lowercase)
        # BERT's pre-tokenizer never joins across a space, so a long text may be tokenized piece by piece
        self._splits_at_spaces = pre_spec.get("type") in ("BertPreTokenizer", "Whitespace", "WhitespaceSplit")
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

    def _encode_long(self, text: str) -> Tokens:
        """Tokens of a long text, tokenized in pieces cut at spaces (the same tokens as whole), as arrays."""
        ids = [np.array([self.cls_id], np.int64)]
        offsets = [np.zeros((1, 2), np.int64)]
        for start, end in _pieces(text, LONG_TEXT_CHARS):
            enc = self._tok.encode(text[start:end], add_special_tokens=False)
            ids.append(np.asarray(enc.ids, np.int64))
            offsets.append(np.asarray(enc.offsets, np.int64).reshape(-1, 2) + start)
        ids.append(np.array([self.sep_id], np.int64))
        offsets.append(np.zeros((1, 2), np.int64))
        all_ids = np.concatenate(ids)
        special = np.zeros(len(all_ids), bool)
        special[[0, -1]] = True
        return Tokens(all_ids, OffsetArray(np.concatenate(offsets)), special, TokenStrings(all_ids, self._tok.id_to_token))

    def join(self, pieces: list[str]) -> str:
        """Tokens back to a string, as transformers' `convert_tokens_to_string` does."""
        pieces = [encodable(p) for p in pieces]
        return self.decoder.decode(pieces) if self.decoder is not None else " ".join(pieces)


def _pieces(text: str, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) pieces of about `size` characters that cover `text`, each cut just after a space or newline."""
    pos, n = 0, len(text)
    while pos < n:
        end = pos + size
        if end >= n:
            yield pos, n
            return
        cut = max(text.rfind(" ", pos + size // 2, end), text.rfind("\n", pos + size // 2, end))
        if cut < 0:  # no space in the second half: the next one after it, or the rest of the text
            later = [c for c in (text.find(" ", end), text.find("\n", end)) if c >= 0]
            cut = min(later) if later else n - 1
        yield pos, cut + 1
        pos = cut + 1


def _vocab_size(tok: Tokenizer) -> int:
    """One past the highest token id (ids are contiguous), found without copying the vocabulary."""
    lo, hi = 0, 1
    while tok.id_to_token(hi) is not None:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # id_to_token(lo) exists, id_to_token(hi) does not
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if tok.id_to_token(mid) is not None else (lo, mid)
    return hi


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
