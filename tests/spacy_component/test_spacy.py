"""koner as a spaCy component, with real spaCy and its rule-based tokenizer on Korean text."""
import json
import subprocess
import sys

import pytest

from support.extras import needs

spacy = needs("spacy")

from support import ROOT  # noqa: E402

CORPUS = ROOT / "export" / "koner_export" / "data" / "parity-corpus.jsonl"
TEXT = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다."
TOKENIZER = {"nlp": {"tokenizer": {"@tokenizers": "spacy.Tokenizer.v1"}}}  # no mecab-ko needed


def _nlp(**config):
    nlp = spacy.blank("ko", config=TOKENIZER)
    nlp.add_pipe("koner_ner", config=config)
    return nlp


def _spans(ents):
    return [(e.start_char, e.end_char, e.label_) for e in ents]


def _koner(ents):
    return [(e.start, e.end, e.label) for e in ents]


@pytest.fixture(scope="module")
def corpus():
    return [json.loads(line)["text"] for line in CORPUS.read_text("utf-8").splitlines()]


def test_the_factory_comes_from_the_entry_point_without_an_import():
    code = ("import sys, spacy; nlp = spacy.blank('ko', config=%r); nlp.add_pipe('koner_ner'); "
            "doc = nlp(%r); assert 'koner' in sys.modules; print([(e.text, e.label_) for e in doc.ents])"
            % (TOKENIZER, "아이유 노래 검색해줘."))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[('아이유', 'PS')]"


def test_split_tokens_give_exactly_konerss_entities_on_the_whole_parity_corpus(corpus, ner):
    nlp = _nlp()
    docs = list(nlp.pipe(corpus))
    want = ner.batch(corpus)
    assert len(docs) == len(corpus) > 500
    same = sum(_spans(d.ents) == _koner(w) for d, w in zip(docs, want, strict=True))
    assert same == len(corpus)  # 100%
    assert all(d.text == t for d, t in zip(docs, corpus))  # splitting never changes the text
    assert sum(len(w) for w in want) > 1000
    assert all(d._.koner_unaligned == [] and d._.koner_widened == [] for d in docs)


def test_without_splitting_unaligned_entities_are_counted_not_hidden(corpus, ner):
    want = ner.batch(corpus)
    total = sum(len(w) for w in want)
    strict = list(_nlp(align="strict").pipe(corpus))
    kept = sum(len(d.ents) for d in strict)
    left = sum(len(d._.koner_unaligned) for d in strict)
    assert kept + left == total and left > 0  # Korean particles: many entities end inside a token
    for d, w in zip(strict, want):
        assert set(_spans(d.ents)) <= set(_koner(w))  # what is set is exact
    expand = list(_nlp(align="expand").pipe(corpus))
    widened = sum(len(d._.koner_widened) for d in expand)
    dropped = sum(len(d._.koner_unaligned) for d in expand)  # widened onto a span another entity took
    assert sum(len(d.ents) for d in expand) + dropped == total and widened + dropped == left
    for d in expand:
        assert all(any(s.start_char <= e["start"] and e["end"] <= s.end_char for s in d.ents) for e in d._.koner_widened)
    print(f"\nrule-based tokens: {kept} of {total} entities ({kept / total:.1%}) fall on token boundaries; "
          f"{left} would be widened or left out; expand widened {widened} and could not set {dropped}")


def test_one_doc_options_and_displacy(ner):
    nlp = _nlp()
    doc = nlp(TEXT)
    assert [(e.text, e.label_) for e in doc.ents] == [(e.text, e.label) for e in ner(TEXT)]
    assert [t.text for t in doc][:3] == ["어제", "아이유", "가"]  # 아이유가 split at the entity's end
    assert [(e["label"], e["start"], e["end"], e["text"]) for e in doc._.koner_entities] == \
        [(e.label, e.start, e.end, e.text) for e in ner(TEXT)]
    only = _nlp(labels="PS", decode="viterbi", aggregation="simple")(TEXT)
    assert {e.label_ for e in only.ents} == {"PS"}
    html = spacy.displacy.render(doc, style="ent")
    assert "아이유" in html and "PS" in html and "LC" in html


def test_existing_entities_are_kept_and_overlaps_reported():
    nlp = spacy.blank("ko", config=TOKENIZER)
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "CELEB", "pattern": "아이유가"}])
    nlp.add_pipe("koner_ner", config={"keep_existing": True, "align": "strict"})
    doc = nlp(TEXT)
    assert ("아이유가", "CELEB") in [(e.text, e.label_) for e in doc.ents]
    assert ("삼성전자", "OG") in [(e.text, e.label_) for e in doc.ents]
    assert "아이유" in [e["text"] for e in doc._.koner_unaligned]


def test_nlp_pipe_goes_through_ner_pipe():
    nlp = _nlp(batch_size=4, workers=2)
    comp = nlp.get_pipe("koner_ner")
    calls = []
    real = comp.ner.pipe

    def counting(texts, **kw):
        calls.append(kw)
        return real(texts, **kw)

    comp.ner.pipe = counting
    texts = ["서울역으로 안내해줘.", "아이유 노래 검색해줘.", "", "부산 날씨 알려줘."] * 5
    docs = list(nlp.pipe(texts))
    assert len(calls) == 1 and calls[0]["batch_size"] == 4 and comp.ner.workers == 2
    assert [d.text for d in docs] == texts
    assert [[e.text for e in d.ents] for d in docs[:2]] == [["서울역"], ["아이유"]]


def test_a_bad_option_is_a_clear_error():
    with pytest.raises(ValueError, match="align must be one of split, strict, expand"):
        _nlp(align="fuzzy")
    with pytest.raises(ValueError, match="aggregation"):
        _nlp(aggregation="mean")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        _nlp(batch_size=0)


def test_docs_serialise_and_run_in_several_processes():
    from spacy.tokens import DocBin

    nlp = _nlp()
    doc = nlp(TEXT)
    again = spacy.tokens.Doc(nlp.vocab).from_bytes(doc.to_bytes())
    assert [(e.text, e.label_) for e in again.ents] == [(e.text, e.label_) for e in doc.ents]
    assert again._.koner_entities == doc._.koner_entities and len(doc._.koner_entities) == 5
    bin_ = DocBin(store_user_data=True, docs=[doc])
    assert [(e.text, e.label_) for e in next(bin_.get_docs(nlp.vocab)).ents] == [(e.text, e.label_) for e in doc.ents]
    texts = ["서울역으로 안내해줘.", "아이유 노래 검색해줘.", "부산 날씨 알려줘."] * 2
    many = [[(e.text, e.label_) for e in d.ents] for d in nlp.pipe(texts, n_process=2, batch_size=2)]
    assert many == [[(e.text, e.label_) for e in nlp(t).ents] for t in texts]


def test_splitting_keeps_an_existing_parse_and_its_sentences():
    from spacy.tokens import Doc

    nlp = _nlp()
    words, spaces = ["아이유가", "노래를", "불렀다", "."], [True, True, False, False]
    doc = Doc(nlp.vocab, words=words, spaces=spaces, heads=[2, 2, 2, 2], deps=["nsubj", "obj", "ROOT", "punct"])
    doc = nlp.get_pipe("koner_ner")(doc)
    assert [t.text for t in doc] == ["아이유", "가", "노래를", "불렀다", "."]
    assert [(t.text, t.head.text, t.dep_) for t in doc][:3] == [("아이유", "불렀다", "nsubj"), ("가", "아이유", "dep"),
                                                                ("노래를", "불렀다", "obj")]
    assert [s.text for s in doc.sents] == ["아이유가 노래를 불렀다."]
    assert [(e.text, e.label_) for e in doc.ents] == [("아이유", "PS")]
