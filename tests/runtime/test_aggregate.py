"""Aggregation alone, on logits captured once from the stand-in, against the transformers pipeline's answers.

Lean: needs only the base install and pytest (no torch, no transformers, no model run). The fixture,
tests/support/golden/aggregation-golden.json, is written by tests/support/golden/make_aggregation_golden.py.
"""
import json

import numpy as np
import pytest

from koner.aggregate import STRATEGIES, Aggregation, Strategy
from koner.decode import Decode
from koner.ner import DEFAULT_MODEL
from koner.tokens import TextTokenizer, Tokens
from support import GOLDEN_DIR

pytestmark = pytest.mark.lean

GOLDEN = json.loads((GOLDEN_DIR / "aggregation-golden.json").read_text("utf-8"))
LABELS = tuple(GOLDEN["labels"])
CASES = GOLDEN["cases"]


@pytest.fixture(scope="module")
def tok():
    return TextTokenizer(DEFAULT_MODEL / "tokenizer.json")


def _tokens(case) -> Tokens:
    return Tokens(np.asarray(case["ids"], np.int64), [tuple(o) for o in case["offsets"]],
                  np.asarray(case["special"], bool), case["strings"])


def _same(expected: list[dict], got: list[dict]) -> bool:
    if len(expected) != len(got):
        return False
    for a, b in zip(expected, got):
        if {k: v for k, v in a.items() if k != "score"} != {k: v for k, v in b.items() if k != "score"}:
            return False
        if abs(a["score"] - b["score"]) > 1e-6:
            return False
    return True


def test_fixture_covers_every_strategy_and_real_entities():
    assert len(CASES) >= 10 and LABELS[0] == "O" and len(LABELS) == 31
    for s in STRATEGIES:
        assert sum(len(c["expected"][s]) for c in CASES) >= 20, s
    # the cases hold what makes the strategies differ: subwords inside entities and stray I- labels
    simple = [e for c in CASES for e in c["expected"]["simple"]]
    assert any(e["word"].startswith("##") for e in simple)
    assert any(c["expected"]["simple"] != c["expected"]["first"] for c in CASES)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_gives_the_pipelines_entities(tok, strategy):
    for case in CASES:
        logits = np.asarray(case["logits"], np.float32)
        got = Aggregation(LABELS, Strategy(strategy), tok.join, tok.unk_id).entities(case["text"], _tokens(case), logits)
        dicts = [e.to_dict() for e in got]
        assert _same(case["expected"][strategy], dicts), (case["text"], strategy, dicts, case["expected"][strategy])
        for e in got:  # offsets index the caller's string
            assert e.text == case["text"][e.start:e.end]


def test_strategy_is_parsed_once_with_a_clear_error():
    assert Strategy.parse("first") is Strategy.FIRST and Strategy.parse(Strategy.MAX) is Strategy.MAX
    with pytest.raises(ValueError, match="none, simple, first, average, max"):
        Strategy.parse("mean")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_streamed_pieces_give_the_entities_of_the_whole(tok, strategy):
    # all cases joined into one long token sequence, fed in small uneven pieces: same entities as at once
    text, ids, offsets, strings, logits = "", [], [], [], []
    for case in CASES:
        base = len(text)
        keep = [i for i, s in enumerate(case["special"]) if not s]
        ids += [case["ids"][i] for i in keep]
        offsets += [(case["offsets"][i][0] + base, case["offsets"][i][1] + base) for i in keep]
        strings += [case["strings"][i] for i in keep]
        logits += [case["logits"][i] for i in keep]
        text += case["text"] + " "
    o_row = [10.0] + [0.0] * (len(LABELS) - 1)
    toks = Tokens(np.asarray([2] + ids + [3], np.int64), [(0, 0)] + offsets + [(0, 0)],
                  np.asarray([True] + [False] * len(ids) + [True]), ["[CLS]"] + strings + ["[SEP]"])
    rows = np.asarray([o_row] + logits + [o_row], np.float32)
    how = Aggregation(LABELS, Strategy(strategy), tok.join, tok.unk_id)
    whole = how.entities(text, toks, rows)
    stream = how.stream(text, toks)
    stream.SEGMENT = 7  # look for a cut after every few rows
    got, pos, step = [], 0, 1
    while pos < len(rows):
        got += stream.feed(pos, rows[pos:pos + step])
        pos += step
        step = step % 5 + 1
    early = len(got)
    got += stream.close()
    assert [e.to_dict() for e in got] == [e.to_dict() for e in whole]
    assert len(whole) > 30 and early > len(whole) // 2  # most came out before the end: the stream did cut


def _dt_text(tok, n_words: int):
    """`"2023년 " * n` as the model tokenizes it, with every token labelled B-DT / I-DT (no O word anywhere),
    the shape that made the stream hold every row and rescan them all on each window."""
    text = "2023년 " * n_words
    toks = tok.encode(text)
    b, i = LABELS.index("B-DT"), LABELS.index("I-DT")
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(len(toks.ids), len(LABELS))).astype(np.float32)
    for t in range(1, len(toks.ids) - 1):
        start, _ = toks.offsets[t]
        rows[t, b if text[start:start + 4] == "2023" else i] += 20.0  # every word of the text is one DT entity
    return text, toks, rows


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_text_without_an_o_word_streams_in_bounded_rows(tok, strategy):
    text, toks, rows = _dt_text(tok, 3000)
    how = Aggregation(LABELS, Strategy(strategy), tok.join, tok.unk_id)
    whole = how.entities(text, toks, rows)
    assert len(whole) > 1000 and {e.label[-2:] for e in whole} == {"DT"}  # nothing but DT, no O word
    stream = how.stream(text, toks)
    got, most = [], 0
    for pos in range(0, len(rows), 510):  # window-sized pieces, as a long text's windows arrive
        got += stream.feed(pos, rows[pos:pos + 510])
        most = max(most, stream.held_rows)
    got += stream.close()
    assert [e.to_dict() for e in got] == [e.to_dict() for e in whole]
    assert most < stream.SEGMENT + 510  # a segment and one window at most, not the whole text


@pytest.mark.parametrize("strategy,decode", [(s, "argmax") for s in STRATEGIES] +
                         [("simple", "viterbi"), ("none", "viterbi")])
def test_random_scores_stream_to_the_whole_texts_entities(tok, strategy, decode):
    # rows biased to B-/I- labels of few types with rare O, cut after every few rows: same entities as at once
    text, toks, _ = _dt_text(tok, 400)
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(len(toks.ids), len(LABELS))).astype(np.float32)
    named = [LABELS.index(lab) for lab in ("B-DT", "I-DT", "B-PS", "I-PS", "O")]
    rows[:, named] += rng.choice([0.0, 3.0], size=(len(rows), len(named)), p=[0.6, 0.4]).astype(np.float32)
    how = Aggregation(LABELS, Strategy(strategy), tok.join, tok.unk_id, Decode(decode))
    whole = how.entities(text, toks, rows)
    stream = how.stream(text, toks)
    stream.SEGMENT = 9
    got, pos, step, most = [], 0, 1, 0
    while pos < len(rows):
        got += stream.feed(pos, rows[pos:pos + step])
        most = max(most, stream.held_rows)
        pos += step
        step = step % 13 + 1
    got += stream.close()
    assert [e.to_dict() for e in got] == [e.to_dict() for e in whole]
    assert len(whole) > 100 and most < len(rows) // 4


def test_token_scores_are_the_whole_arrays_softmax_bit_for_bit(tok):
    """Short texts softmax only the rows of tokens that are not O: the scores are still exactly the
    probabilities a softmax of all rows gives (the pipeline's), for every captured case."""
    from koner.aggregate import softmax

    how = Aggregation(LABELS, Strategy.NONE, tok.join, tok.unk_id)
    checked = 0
    for case in CASES:
        logits = np.asarray(case["logits"], np.float32)
        whole = softmax(logits)
        for e in how.entities(case["text"], _tokens(case), logits):
            assert e.score == float(whole[e.index, LABELS.index(e.label)])
            checked += 1
    assert checked > 50


def test_logits_rows_must_match_the_tokens(tok):
    case = next(c for c in CASES if len(c["ids"]) > 5)
    how = Aggregation(LABELS, Strategy.SIMPLE, tok.join, tok.unk_id)
    with pytest.raises(ValueError):
        how.entities(case["text"], _tokens(case), np.asarray(case["logits"], np.float32)[:-2])


def test_entities_built_on_the_fast_path_are_ordinary_entities():
    import copy
    import dataclasses
    import pickle

    from koner.entity import Entity, make_entity

    args = ("LC", 0, 3, 0.964, "서울역", "서울역")
    fast, plain = make_entity(*args), Entity(*args)
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert fast.to_dict() == plain.to_dict() == {"entity_group": "LC", "score": 0.964, "word": "서울역", "start": 0,
                                                 "end": 3}
    assert make_entity(*args, 5).to_dict()["index"] == 5
    assert pickle.loads(pickle.dumps(fast)) == plain and copy.deepcopy(fast) == plain
    assert dataclasses.replace(fast, label="PS") == Entity("PS", 0, 3, 0.964, "서울역", "서울역")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.label = "PS"
