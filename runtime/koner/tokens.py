"""Text -> WordPiece tokens with character offsets, through the `tokenizers` library."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .errors import TokenizerError

_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """`text` with lone surrogates (from broken decoding) as U+FFFD: same length, so offsets hold."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


@dataclass(frozen=True)
class Tokens:
    """One text's tokens, [CLS] and [SEP] included."""

    ids: np.ndarray  # int64 [n]
    offsets: list[tuple[int, int]]
    special: np.ndarray  # bool [n]
    strings: list[str]


class TextTokenizer:
    """The model's tokenizer, loaded from tokenizer.json and checked to keep case and accents."""

    def __init__(self, path: Path, *, lowercase: bool = False):
        if not path.is_file():
            raise TokenizerError(path, "missing; re-export the model with `koner export`")
        try:
            self._tok = Tokenizer.from_file(str(path))
            normalizer = self._tok.normalizer
            spec = {"normalizer": json.loads(normalizer.__getstate__()) if normalizer is not None else None}
        except Exception as exc:  # tokenizers raises plain Exception on bad files
            raise TokenizerError(path, f"cannot be read ({exc}); re-export the model with `koner export`") from None
        self._tok.no_truncation()
        self._tok.no_padding()
        _check_normalizer(path, spec.get("normalizer"), lowercase)
        self.path = path
        self.vocab_size = _vocab_size(self._tok)
        self.unk_id = self._tok.token_to_id("[UNK]")
        self.cls_id = self._tok.token_to_id("[CLS]")
        self.sep_id = self._tok.token_to_id("[SEP]")
        if self.cls_id is None or self.sep_id is None:
            raise TokenizerError(path, "has no [CLS] or [SEP] token; only BERT-style WordPiece tokenizers are supported")
        self.decoder = self._tok.decoder

    def encode(self, text: str) -> Tokens:
        """Tokenize one text, whole: no truncation."""
        return _tokens(self._tok.encode(_encodable(text)))

    def encode_batch(self, texts: list[str]) -> list[Tokens]:
        """Tokenize several texts, whole."""
        return [_tokens(e) for e in self._tok.encode_batch([_encodable(t) for t in texts])]

    def join(self, pieces: list[str]) -> str:
        """Tokens back to a string, as transformers' `convert_tokens_to_string` does."""
        pieces = [_encodable(p) for p in pieces]
        return self.decoder.decode(pieces) if self.decoder is not None else " ".join(pieces)


def _vocab_size(tok: Tokenizer) -> int:
    """One past the highest token id (ids are contiguous), found without copying the vocabulary."""
    lo, hi = 0, 1
    while tok.id_to_token(hi) is not None:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # id_to_token(lo) exists, id_to_token(hi) does not
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if tok.id_to_token(mid) is not None else (lo, mid)
    return hi


def _tokens(enc) -> Tokens:
    return Tokens(
        ids=np.asarray(enc.ids, dtype=np.int64),
        offsets=enc.offsets,
        special=np.asarray(enc.special_tokens_mask, dtype=bool),
        strings=enc.tokens,
    )


def _normalizers(spec):
    if not spec:
        return []
    if spec.get("type") == "Sequence":
        return [n for s in spec.get("normalizers", []) for n in _normalizers(s)]
    return [spec]


def _check_normalizer(path: Path, spec, lowercase: bool) -> None:
    for n in _normalizers(spec):
        kind = n.get("type")
        strips = kind == "StripAccents" or (kind == "BertNormalizer" and (
            n.get("strip_accents") or (n.get("strip_accents") is None and n.get("lowercase"))))
        if strips or kind in ("NFD", "NFKD"):
            raise TokenizerError(path, f"its {kind} normalizer strips accents, which decomposes Hangul into jamo; "
                                       "rebuild it with strip_accents=False (`koner export` does)")
        lowers = kind == "Lowercase" or (kind == "BertNormalizer" and n.get("lowercase"))
        if lowers and not lowercase:
            raise TokenizerError(path, "its normalizer lower-cases text but koner.json says the model is cased; "
                                       "re-export the model with `koner export`")
