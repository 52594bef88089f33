"""Any input, long input, many threads: no crash, no hang, no lost text."""
import json
import threading

import pytest

from support.extras import needs

needs("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.lean

HANGUL = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
JAMO = st.characters(min_codepoint=0x1100, max_codepoint=0x11FF)
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)  # lone, as broken decoding leaves them
ODD = st.sampled_from(["\u0000", "\u200d", "\u0301", "\u202e", "\t", "\n", "\r", " ", "  ", "\u3000", "👨‍👩‍👧",
                       "🇰🇷", "😀", "\ufeff", "\x7f", "\ud7a3", "e\u0301", "ﾊﾝｸﾞﾙ", "[CLS]", "[SEP]", "##", "서울역",
                       "아이유", "삼성전자", "2023년"])
TEXT = st.lists(st.one_of(HANGUL, JAMO, ODD, SURROGATE, st.characters()), max_size=80).map("".join)


def _check(text, ents):
    last_end = 0
    for e in ents:
        assert 0 <= e.start < e.end <= len(text)
        assert text[e.start:e.end] == e.text
        assert e.start >= last_end  # sorted, no overlap
        last_end = e.end
    json.dumps([e.to_dict() for e in ents])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TEXT)
def test_any_unicode_gives_valid_exact_offsets(ner, text):
    ents = ner(text)
    _check(text, ents)
    assert ner(text) == ents


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(TEXT, min_size=1, max_size=6), st.sampled_from(["none", "first", "average", "max"]))
def test_batches_and_strategies_on_any_unicode(ner, texts, strategy):
    for t, ents in zip(texts, ner.batch(texts, batch_size=3, aggregation=strategy), strict=True):
        _check(t, ents)


def test_broken_encoding_keeps_offsets(ner):
    text = "아이유 노래 \udc80검색해줘." + "\udcff"  # as bytes.decode(errors="surrogateescape") leaves them
    ents = ner(text)
    assert ("PS", 0, 3) in {(e.label, e.start, e.end) for e in ents}
    _check(text, ents)


def test_2000_repetitions_keep_every_entity(ner):
    sentence = "아이유 노래 검색해줘. "
    one = [(e.label, e.start, e.end) for e in ner(sentence)]
    assert one
    n = 2000
    got = {(e.label, e.start, e.end) for e in ner(sentence * n)}
    step = len(sentence)
    assert got == {(lab, s + k * step, e + k * step) for k in range(n) for lab, s, e in one}


def test_threads_give_the_sequential_results(ner):
    texts = ["아이유 노래 검색해줘.", "서울역으로 안내해줘.", "에어컨 온도 3도 올려줘.",
             "2023년 3월 15일 오후 3시에 삼성전자 본사에서 이재용 회장이 기자회견을 열었다.", "", "😀 부산 😀",
             "서울역으로 안내해줘. " * 90]
    expected = [ner(t) for t in texts]
    errors, mismatches = [], []

    def work(k):
        try:
            for i in range(300):
                j = (i + k) % len(texts)
                got = ner(texts[j]) if i % 3 else ner.batch([texts[j]])[0]
                if got != expected[j]:
                    mismatches.append((k, i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads)
    assert not errors and not mismatches
