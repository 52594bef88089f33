"""The lean runtime on the bundled model: entities, offsets, dicts, batches, long text."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from koner import NER, Entity, to_dicts
from support import EXAMPLES, ROOT

pytestmark = pytest.mark.lean


def test_seed_examples_give_their_entities(ner):
    got = [{(e.label, e.text) for e in ner(t)} for t in EXAMPLES]
    assert ("LC", "서울역") in got[0]
    assert ("QT", "3") in got[1]
    assert ("PS", "아이유") in got[2]


def test_offsets_index_the_callers_string(ner):
    text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다."
    ents = ner(text)
    assert ents
    for e in ents:
        assert isinstance(e, Entity)
        assert text[e.start:e.end] == e.text
        assert type(e.score) is float and 0 < e.score <= 1
        assert (e.label_, e.start_char, e.end_char) == (e.label, e.start, e.end)
    assert [e.start for e in ents] == sorted(e.start for e in ents)


def test_to_dict_is_the_pipelines_dict_and_json_serialisable(ner):
    ents = ner("아이유 노래 검색해줘.")
    d = ents[0].to_dict()
    assert list(d) == ["entity_group", "score", "word", "start", "end"]
    assert json.loads(json.dumps(to_dicts(ents))) == to_dicts(ents)
    none = ner("아이유 노래 검색해줘.", aggregation="none")
    assert list(none[0].to_dict()) == ["entity", "score", "index", "word", "start", "end"]
    assert none[0].to_dict()["entity"].startswith(("B-", "I-"))
    assert none[0].index == 1  # the first token after [CLS]


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_every_strategy_gives_valid_spans(ner, strategy):
    text = "2023년 3월 15일 오후 3시에 삼성전자 본사에서 이재용 회장이 기자회견을 열었다."
    ents = ner(text, aggregation=strategy)
    for e in ents:
        assert text[e.start:e.end] == e.text and e.start < e.end
    found = {(e.label.split("-")[-1], e.text) for e in ents}
    assert {("OG", "삼성전자"), ("PS", "이재용")} <= found, found  # the spans are there, not just valid if any
    assert ents[0].start == 0 and ents[0].label.endswith("DT")


def test_word_strategies_keep_whole_words(ner):
    text = "서울역으로 안내해줘."
    first = ner(text, aggregation="first")
    assert any(e.text == "서울역으로" for e in first)  # the particle is pulled in, as in transformers


def test_bad_input(ner):
    for bad in (None, 3, b"bytes", ["list"]):
        with pytest.raises(TypeError, match=type(bad).__name__):
            ner(bad)
    assert ner("") == [] and ner("   \n\t ") == []
    with pytest.raises(TypeError):
        ner.batch("a string")
    with pytest.raises(ValueError, match="aggregation"):
        ner("서울", aggregation="mean")
    with pytest.raises(ValueError, match="batch_size"):
        ner.batch(["서울"], batch_size=0)


def test_batch_matches_single_calls_in_input_order(ner):
    texts = ["아이유 노래 검색해줘.", "", "서울역으로 안내해줘. " * 80, "에어컨 온도 3도 올려줘.", "부산 날씨 알려줘."]
    batched = ner.batch(texts, batch_size=2)
    single = [ner(t) for t in texts]
    assert [[(e.label, e.start, e.end) for e in b] for b in batched] == \
           [[(e.label, e.start, e.end) for e in s] for s in single]
    for b, s in zip(batched, single):
        assert all(abs(x.score - y.score) < 1e-4 for x, y in zip(b, s))


def test_long_text_keeps_every_repetition(ner):
    sentence = "아이유 노래 검색해줘. "
    one = ner(sentence)
    assert one
    n = 300  # 1,800 tokens: nine windows of 256
    text = sentence * n
    ents = ner(text)
    step = len(sentence)
    expected = {(e.label, e.start + k * step, e.end + k * step) for k in range(n) for e in one}
    assert {(e.label, e.start, e.end) for e in ents} == expected
    assert len(ner.tokenizer.encode(text).ids) > 3 * ner.max_length


def test_entity_across_a_window_edge_comes_out_whole(ner):
    # put a name right where the first window ends
    filler = "그리고 "
    assert len(ner.tokenizer.encode(filler).ids) == 3  # one token each
    k = ner.window - 3  # the name is the first window's last content token
    text = filler * k + "아이유 노래 검색해줘. " + filler * 400  # longer than the model: run in windows
    assert len(ner.tokenizer.encode(text).ids) > ner.max_length
    start = len(filler) * k
    assert ("PS", start, start + 3) in {(e.label, e.start, e.end) for e in ner(text)}


def test_runtime_needs_no_torch_or_transformers():
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('torch', 'transformers'):
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(ROOT / 'runtime')!r})
        import koner
        ents = koner.NER.load()('아이유 노래 검색해줘.')
        print([(e.label, e.text) for e in ents])
        assert 'torch' not in sys.modules and 'transformers' not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "('PS', '아이유')" in out.stdout


def test_prefused_model_loads_at_basic_level_with_the_same_answers(ner):
    # the bundled model was fused at export, so "auto" runs onnxruntime's basic level on it
    full = NER.load(optimization="all")
    texts = ["어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다.", "에어컨 온도 3도 올려줘."]
    for a, b in zip(ner.batch(texts), full.batch(texts)):
        assert [(e.label, e.start, e.end) for e in a] == [(e.label, e.start, e.end) for e in b]
        assert all(abs(x.score - y.score) < 1e-5 for x, y in zip(a, b))
    with pytest.raises(ValueError, match="optimization"):
        NER.load(optimization="fast")


def _long_texts() -> dict:
    """Texts over LONG_TEXT_CHARS with no space near where a piece would end."""
    import base64

    syllables = "".join(map(chr, range(0xAC00, 0xAC00 + 2000)))  # 가각갂...: Hangul, no space, no punctuation
    return {
        "a Hangul run": syllables * 50,  # 100,000 characters: one word, longer than WordPiece allows
        "base64": base64.b64encode(bytes(range(256)) * 150).decode(),  # 51,200 characters: + and / split it
        "runs between CJK, a control and prose": (syllables * 20 + "中" + syllables * 20 + "\x00" + syllables * 20
                                                  + " 어제 아이유가 서울역에서 김민수 씨를 만났다. " * 500),
    }


@pytest.mark.parametrize("name", list(_long_texts()))
def test_a_long_text_without_spaces_is_tokenized_in_bounded_pieces_with_its_whole_tokens(ner, monkeypatch, name):
    from koner.tokens import LONG_TEXT_CHARS

    text = _long_texts()[name]
    whole = ner.tokenizer._tok.encode(text)  # the tokenizer's own answer, all at once
    real, seen = ner.tokenizer._tok, []

    class Spy:
        def __getattr__(self, attr):
            return getattr(real, attr)

        def encode(self, piece, *a, **kw):
            seen.append(len(piece))
            return real.encode(piece, *a, **kw)

    monkeypatch.setattr(ner.tokenizer, "_tok", Spy())
    toks = ner.tokenize(text)
    assert toks.ids.tolist() == whole.ids
    assert [tuple(o) for o in toks.offsets] == whole.offsets
    assert max(seen) < LONG_TEXT_CHARS + 1024  # no piece handed to the tokenizer is longer (memory)


def test_tokenizing_a_long_word_takes_bounded_memory():
    # a 400,000-character word (no space): tokenized whole, the tokenizer's work grows with the word (about
    # 60 MB here); in pieces it stays that of one piece (about 3 MB)
    code = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT / 'runtime')!r})
        from koner.ner import DEFAULT_MODEL
        from koner.tokens import TextTokenizer
        tokenizer = TextTokenizer(DEFAULT_MODEL / "tokenizer.json")  # not the model, whose loading peaks higher
        text = "".join(map(chr, range(0xAC00, 0xAC00 + 2000))) * 200
        tokenizer.encode("아이유 노래 검색해줘.")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        toks = tokenizer.encode(text)
        assert [(o[0], o[1]) for o in toks.offsets] == [(0, 0), (0, len(text)), (0, 0)]  # one [UNK], as whole
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 32 * 1024, f"peak RSS grew by {int(out.stdout) // 1024} MB"


def test_import_and_a_remembered_load_leave_openssl_and_the_thread_pool_unloaded(tmp_path):
    # `import koner` and a load whose file hashes are remembered need neither OpenSSL (hashlib: 3.5 MB RSS) nor
    # concurrent.futures with logging (0.7 MB); the hash mask style and the first load of a folder still hash
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'runtime')!r})
        import koner
        light = [m for m in ('_hashlib', 'hashlib', 'secrets', 'concurrent.futures', 'logging') if m in sys.modules]
        ner = koner.NER.load(workers=1)
        ents = ner('아이유 노래 검색해줘.')
        tag = ner.mask('어제 김민수 씨를 만났다.', labels='PS').text
        still = [m for m in ('_hashlib', 'concurrent.futures') if m in sys.modules]
        hashed = ner.mask('어제 김민수 씨를 만났다.', labels='PS', style='hash', salt='s').text
        print(light, still, [(e.label, e.text) for e in ents], tag, hashed)
    """)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("[] [] [('PS', '아이유')] 어제 [PS] 씨를 만났다. 어제 [PS-"), again.stdout
    assert first.stdout.split()[-3:] == again.stdout.split()[-3:]  # the same pseudonym for the same salt


def test_loading_the_tokenizer_holds_no_python_copy_of_its_vocabulary():
    # its settings are read from the model's attributes: serializing a 35,000-entry vocabulary into JSON and a
    # dict left 6-7 MB of RSS behind after they were freed
    import tracemalloc

    from koner.ner import DEFAULT_MODEL
    from koner.tokens import TextTokenizer

    tracemalloc.start()
    try:
        tok = TextTokenizer(DEFAULT_MODEL / "tokenizer.json", lowercase=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak
    assert (tok.unk_id, tok.word_aware, tok._max_word) == (1, True, 100)
    assert list(tok.encode("서울역으로 안내해줘.").strings[:3]) == ["[CLS]", "서울역", "##으로"]
