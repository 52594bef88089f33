"""decode="viterbi" through the API, the CLI and long texts: valid BIO, exact offsets, real probabilities."""
import json
import random
import subprocess
import sys

import numpy as np
import pytest

from koner import NER
from koner import windows as win
from koner.aggregate import Strategy, softmax
from koner.decode import Decode

pytestmark = pytest.mark.lean


def _corpus():
    from support import ROOT

    return [json.loads(l)["text"] for l in open(ROOT / "export" / "koner_export" / "data" / "parity-corpus.jsonl",
                                                 encoding="utf-8")]


def test_every_output_is_valid_bio_with_exact_offsets_and_model_probabilities(ner):
    texts = [t for t in _corpus() if t.strip()][:150]
    for text, toks in zip(texts, ner.batch(texts, aggregation="none", decode="viterbi")):
        prev = None
        for e in toks:
            assert text[e.start:e.end] == e.text
            if e.label.startswith("I-"):  # an I- follows the B-/I- of its type on the token right before
                assert prev is not None and prev.index == e.index - 1 and prev.label[2:] == e.label[2:]
            prev = e
        # scores are the model's own probabilities of the chosen labels
        t = ner.tokenize(text)
        probs = softmax(ner._run([t.ids])[0]) if len(t.ids) <= ner.max_length else None
        if probs is not None:
            for e in toks:
                assert e.score == pytest.approx(float(probs[e.index, ner.labels.index(e.label)]), abs=1e-6)


def test_viterbi_joins_the_fragments_argmax_leaves(ner):
    text = "BTS 신곡 틀어줘. 토트넘 홋스퍼의 27회차 경기"
    argmax = [(e.label, e.text) for e in ner(text)]
    viterbi = [(e.label, e.text) for e in ner(text, decode="viterbi")]
    assert ("PS", "BT") in argmax and ("OG", "S") in argmax  # BTS split in two by argmax
    assert any(t == "BTS" for _, t in viterbi) and len(viterbi) < len(argmax)
    simple = ner(text, decode="viterbi")
    assert all(0.0 < e.score <= 1.0 for e in simple)


def test_long_text_across_windows_equals_whole_text_viterbi(ner):
    rng = random.Random(3)
    corpus = _corpus()
    text = " ".join(rng.choice(corpus) for _ in range(150))
    toks = ner.tokenize(text)
    assert len(toks.ids) > 4 * ner.max_length
    plan = ner.windows(toks)
    rows = win.stitch(len(toks.ids), plan, [ner._run([w.ids])[0] for w in plan])
    whole = ner.aggregator("simple", "viterbi").entities(text, toks, rows)
    assert [e.to_dict() for e in ner(text, decode="viterbi")] == [e.to_dict() for e in whole]


def test_options_on_load_per_call_and_refusals():
    vit = NER.load(decode="viterbi")
    text = "BTS 신곡 틀어줘."
    assert [e.to_dict() for e in vit(text)] == [e.to_dict() for e in vit(text, decode="viterbi")]
    assert [e.to_dict() for e in vit(text, decode="argmax")] == [e.to_dict() for e in NER.load()(text)]
    with pytest.raises(ValueError, match="'none' or 'simple'"):
        NER.load(decode="viterbi", aggregation="first")
    with pytest.raises(ValueError, match="'none' or 'simple'"):
        vit(text, aggregation="max")
    with pytest.raises(ValueError, match="argmax, viterbi"):
        NER.load(decode="crf")
    assert [len(x) for x in vit.pipe([text, "", text])] == [len(vit(text)), 0, len(vit(text))]


def test_cli_decode():
    out = subprocess.run([sys.executable, "-m", "koner.cli", "ner", "--decode", "viterbi", "BTS 신곡 틀어줘."],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and json.loads(out.stdout)["entities"][0]["word"] == "BTS"
    bad = subprocess.run([sys.executable, "-m", "koner.cli", "ner", "--decode", "viterbi", "--aggregation", "max",
                          "x"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_labels_come_from_the_manifest(model_copy):
    m = json.loads((model_copy / "koner.json").read_text("utf-8"))
    m["labels"] = [lab.replace("PS", "PER") for lab in m["labels"]]
    (model_copy / "koner.json").write_text(json.dumps(m), "utf-8")
    ner = NER.load(model_copy, decode="viterbi")
    assert "PER" in ner.entity_types and "PS" not in ner.entity_types
    assert ("PER", "아이유") in {(e.label, e.text) for e in ner("아이유 노래 검색해줘.")}
    assert np.isin(ner.bio.inside, [ner.labels.index("I-PER")]).any()
