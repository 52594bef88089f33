"""Byte-level BPE and Unigram tokenizers (lean: base install): koner's tokens are the transformers tokenizer's,
with exact character offsets over multi-byte Korean characters, and its entities are the pipeline's for all
five strategies, its word rule included (tests/support/golden/make_tokenizer_families_golden.py made the fixture)."""
import base64
import json

import numpy as np
import pytest

from koner.aggregate import Aggregation, Strategy
from koner.scheme import Tagging
from koner.tokens import TextTokenizer
from support import GOLDEN_DIR

pytestmark = pytest.mark.lean

GOLDEN = json.loads((GOLDEN_DIR / "tokenizer-families-golden.json").read_text("utf-8"))
FAMILIES = sorted(GOLDEN["families"])
STRATEGIES = ("none", "simple", "first", "average", "max")


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    spec = GOLDEN["families"][request.param]
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    path.write_text(json.dumps(spec["tokenizer"], ensure_ascii=False), "utf-8")
    return request.param, spec, TextTokenizer(path, unk_id=spec["unk_id"])


def test_the_fixture_holds_both_families_and_real_entities():
    assert FAMILIES == ["Unigram", "byte-level BPE"]
    for spec in GOLDEN["families"].values():
        assert len(spec["texts"]) == 40
        assert sum(len(r["entities"]["simple"]) for r in spec["texts"]) > 50


def test_tokens_and_offsets_are_the_transformers_tokenizers(family):
    _, spec, tok = family
    for row in spec["texts"]:
        t = tok.encode(row["text"])
        assert t.ids.tolist() == row["ids"], row["text"]
        assert [list(o) for o in t.offsets] == row["offsets"], row["text"]
    assert not tok.word_aware  # neither marks subwords itself: the pipeline's space rule applies


def test_byte_level_offsets_are_character_offsets_into_korean_text(family):
    name, _, tok = family
    text = "서울역에서 아이유를 만났다."
    t = tok.encode(text)
    visible = [o for o, s in zip(t.offsets, t.special) if not s]
    assert all(0 <= a < b <= len(text) for a, b in visible)
    assert "".join(dict.fromkeys(text[a:b] for a, b in visible)).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_gives_the_pipelines_entities(family, strategy):
    _, spec, tok = family
    labels = tuple(spec["labels"])
    how = Aggregation(labels, Strategy.parse(strategy), tok.join, tok.unk_id, word_aware=tok.word_aware,
                      tagging=Tagging(labels))
    for row in spec["texts"]:
        tokens = tok.encode(row["text"])
        logits = np.frombuffer(base64.b64decode(row["logits"]), np.float32).reshape(len(tokens.ids), len(labels))
        got = [e.to_dict() for e in how.entities(row["text"], tokens, logits)]
        want = row["entities"][strategy]
        assert [{k: v for k, v in e.items() if k != "score"} for e in got] == \
               [{k: v for k, v in e.items() if k != "score"} for e in want], (strategy, row["text"])
        assert [e["score"] for e in got] == pytest.approx([e["score"] for e in want], abs=1e-5)
