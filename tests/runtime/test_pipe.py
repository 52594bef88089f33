"""NER.pipe: lazy, ordered, parallel over one session; long texts in bounded memory with the same entities."""
import random
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from support import ROOT
from support.models import fail_on
from koner import NER, WorkerError

pytestmark = pytest.mark.lean

SENTENCES = ["아이유 노래 검색해줘.", "서울역으로 안내해줘.", "에어컨 온도 3도 올려줘.",
             "2023년 3월 15일 오후 3시에 삼성전자 본사에서 이재용 회장이 기자회견을 열었다.", "", "😀 부산 😀",
             "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다."]


def _key(ents):
    return [(e.label, e.start, e.end, round(e.score, 6), e.word) for e in ents]


def test_order_is_kept_with_shuffled_lengths(ner):
    rng = random.Random(7)
    texts = [rng.choice(SENTENCES) * rng.choice([1, 1, 1, 3, 20, 60]) for _ in range(120)]
    assert max(len(ner.tokenizer.encode(t).ids) for t in texts) > 2 * ner.max_length  # some span windows
    expected = [_key(ner(t)) for t in texts]
    for workers in (1, 2, 3):
        assert [_key(e) for e in ner.pipe(texts, workers=workers, batch_size=4)] == expected
    assert [_key(e) for e in ner.batch(texts, batch_size=8)] == expected


def test_a_generator_is_read_lazily():
    ner = NER.load(workers=2)
    pulled = []

    def source():
        for i in range(10_000):
            pulled.append(i)
            yield SENTENCES[i % len(SENTENCES)]

    batch_size, bound = 4, 2 * 4  # README: at most workers * batch_size texts ahead of the one returned
    for k, _ in enumerate(ner.pipe(source(), batch_size=batch_size)):
        assert len(pulled) <= k + 1 + bound, (k, len(pulled))
        if k == 50:
            break
    assert len(pulled) < 100


def test_closing_the_stream_early_stops_the_workers():
    ner = NER.load(workers=2)
    before = threading.active_count()
    it = ner.pipe((SENTENCES[1] for _ in range(100_000)), batch_size=8)
    next(it)
    it.close()
    deadline = time.time() + 30
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before


def test_an_error_inside_a_worker_names_the_input():
    ner = NER.load(workers=2)
    fail_on(ner, "폭탄")
    texts = SENTENCES[:3] + ["폭탄 테러"] + SENTENCES
    got = []
    with pytest.raises(WorkerError) as err:
        for ents in ner.pipe(texts, batch_size=2):
            got.append(ents)
    assert err.value.index == 3 and "input 3" in str(err.value) and "onnxruntime failed" in str(err.value)
    assert len(got) == 3  # everything before it was answered, in order


def test_bad_input_and_bad_options(ner):
    with pytest.raises(TypeError, match="text 2 is int"):
        list(ner.pipe(["서울", "부산", 42]))
    with pytest.raises(TypeError):
        list(ner.pipe("서울역"))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            list(ner.pipe(["서울"], workers=bad))
        with pytest.raises(ValueError, match="batch_size"):
            list(ner.pipe(["서울"], batch_size=bad))
    with pytest.raises(ValueError, match="aggregation"):
        list(ner.pipe(["서울"], aggregation="mean"))


def test_defaults_use_one_intra_op_thread_and_a_worker_per_cpu(ner):
    from koner.system import usable_cpus

    assert ner.session.threads == 1 and ner.workers == usable_cpus()
    two = NER.load(threads=2)
    assert two.workers == max(1, usable_cpus() // 2)
    # the same labels and offsets whatever the threads (int8 kernels sum in integers)
    texts = [s * 3 for s in SENTENCES]
    assert [[(e.label, e.start, e.end) for e in x] for x in two.batch(texts)] == \
        [[(e.label, e.start, e.end) for e in x] for x in ner.batch(texts)]


def test_a_long_text_gives_the_same_entities_on_any_number_of_workers(ner):
    unit = "국립중앙박물관은 10월 1일부터 고려청자 특별전을 연다. 관람료는 5,000원이다. 어제 아이유가 서울역에서 노래했다. "
    text = unit * 1200  # about 80,000 characters: compact tokens, ~90 windows, cut into segments
    assert len(text) > 65_536
    one = _key(ner.iter_entities(text, workers=1))
    assert _key(ner.iter_entities(text, workers=3)) == one
    assert _key(ner(text)) == one and _key(next(iter(ner.pipe([text])))) == one
    # every repetition keeps the entities the model is sure of, window edges and segment cuts included
    for label, word in (("PS", "아이유"), ("LC", "서울역"), ("DT", "어제")):
        assert sum(e[0] == label and e[4] == word for e in one) == 1200


def test_one_megabyte_streams_in_bounded_memory():
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'runtime')!r})
        from koner import NER
        from koner.system import peak_rss_mb
        ner = NER.load()
        unit = "국립중앙박물관은 10월 1일부터 고려청자 특별전을 연다. 관람료는 5,000원이다. "
        text = unit * (1_000_000 // len(unit.encode('utf-8')) + 1)
        assert len(text.encode('utf-8')) >= 1_000_000
        n, last = 0, None
        for e in ner.iter_entities(text):
            n, last = n + 1, e
        assert last.end > len(text) - len(unit)
        print(n, int(peak_rss_mb()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    n_ents, peak_mb = map(int, out.stdout.split())
    print(f"1 MB input: {n_ents} entities, peak RSS {peak_mb} MB")
    assert n_ents > 90_000 and peak_mb < 250  # was 339-442 MB when the whole text was held at once


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_answers_before_a_bad_input_are_yielded_first(ner, workers):
    texts = ["아이유 노래 검색해줘.", "서울역으로 안내해줘.", "에어컨 온도 3도 올려줘."]
    expected = [_key(ner(t)) for t in texts]
    got = []
    with pytest.raises(TypeError, match="text 3 is int"):
        for ents in ner.pipe(texts + [42, "부산"], workers=workers):
            got.append(_key(ents))
    assert got == expected

    def failing_source():
        yield from texts
        raise OSError("the disk went away")

    got = []
    with pytest.raises(OSError, match="disk went away"):
        for ents in ner.pipe(failing_source(), workers=workers, batch_size=2):
            got.append(_key(ents))
    assert got == expected


def test_a_failing_window_of_a_long_text_names_the_callers_input():
    ner = NER.load(workers=2)
    run, calls = ner.session.run, []

    def failing(ids, mask):
        calls.append(ids.shape[1])
        if ids.shape[1] == ner.window and sum(c == ner.window for c in calls) == 3:
            raise RuntimeError("onnxruntime failed")  # the long text's third window
        return run(ids, mask)

    ner.session.run = failing
    long_text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 200
    texts = SENTENCES[:5] + [long_text] + SENTENCES[:3]
    got = []
    with pytest.raises(WorkerError) as err:
        for ents in ner.pipe(texts, batch_size=2):
            got.append(ents)
    assert err.value.index == 5 and "input 5" in str(err.value)
    assert len(got) == 5
    with pytest.raises(RuntimeError):  # one text, not a stream: the error itself, not a position
        calls.clear()
        ner(long_text)


def test_memory_pattern_is_on_only_for_several_workers():
    assert NER.load(workers=1).session.options.enable_mem_pattern is False
    assert NER.load(workers=2).session.options.enable_mem_pattern is True
    assert NER.load(workers=1, memory_pattern=True).session.options.enable_mem_pattern is True
    assert NER.load(workers=2, memory_pattern=False).session.options.enable_mem_pattern is False
    assert NER.load(threads=1).session.options.intra_op_num_threads == 1


def test_overlap_sets_the_windows_of_a_long_text():
    from koner import windows as win

    text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 300
    got = {}
    for overlap in (0, 128, 255):
        ner = NER.load(overlap=overlap, window=512, workers=1)
        run, calls = ner.session.run, []
        ner.session.run = lambda ids, mask: calls.append(ids.shape) or run(ids, mask)
        ents = ner(text)
        n = len(ner.tokenize(text).ids)
        assert len(calls) == len(win.starts(n, ner.window, overlap))  # one call per window of that overlap
        got[overlap] = (len(calls), ents)
    assert got[0][0] < got[128][0] < got[255][0]
    for _, ents in got.values():  # every repetition's person is found, whatever the overlap
        assert sum(e.label == "PS" and e.text == "아이유" for e in ents) == 300
    for bad in (-1, 256, 1.5):
        with pytest.raises(ValueError, match="overlap"):
            NER.load(overlap=bad)


def test_a_long_text_runs_in_256_token_windows_sharing_a_quarter_by_default():
    # shorter windows than the model's 512 hold less memory a call and cost less CPU on a long text; a text within
    # the model still runs whole, in one call
    from koner import windows as win

    ner = NER.load(workers=1)
    assert (ner.window, ner.overlap) == (256, 64)
    run, calls = ner.session.run, []
    ner.session.run = lambda ids, mask: calls.append(ids.shape[1]) or run(ids, mask)
    long = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 40
    n = len(ner.tokenize(long).ids)
    ents = ner(long)
    assert n > 512 and calls == [256] * len(win.starts(n, 256, 64))
    assert sum(e.label == "PS" and e.text == "아이유" for e in ents) == 40
    calls.clear()
    within = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 20
    ner(within)
    assert calls == [len(ner.tokenize(within).ids)] and 256 < calls[0] <= 512
    # the old windows on request, or from the old overlap alone (the default window is four times an overlap
    # given); the pipeline's stride 128
    assert (NER.load(window=512).window, NER.load(window=512).overlap) == (512, 128)
    assert (NER.load(overlap=128).window, NER.load(overlap=50).window, NER.load(overlap=100).window) == (512, 256, 400)
    assert NER.load(long_text="pipeline").overlap == 128
    with pytest.raises(ValueError, match=r"window must be an integer from 3 to 512 tokens"):
        NER.load(window=513)
    with pytest.raises(ValueError, match=r"overlap must be an integer from 0 to 127 tokens \(half a window of 256"):
        NER.load(window=256, overlap=128)
    for bad in (2, True, 1.5, "256"):
        with pytest.raises(ValueError, match="window"):
            NER.load(window=bad)


def test_a_call_may_restate_the_models_window_but_not_change_it():
    from koner import Options

    text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 40
    default, explicit = NER.load(workers=1), NER.load(window=256, overlap=64, workers=1)
    want = [e.to_dict() for e in default(text) if e.label == "PS"]
    # options that leave the window out, or name the one the model has, are the model's
    assert [e.to_dict() for e in explicit(text, options=Options(labels="PS"))] == want
    assert [e.to_dict() for e in default(text, options=Options(window=256, labels="PS"))] == want
    with pytest.raises(ValueError, match="window can only be set when a model loads"):
        default(text, options=Options(window=512))


def test_windows_names_the_calls_a_long_text_runs_in_either_mode():
    text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 40
    for ner in (NER.load(workers=1), NER.load(long_text="pipeline", workers=1)):
        run, calls = ner.session.run, []
        ner.session.run = lambda ids, mask: calls.append(ids.shape[1]) or run(ids, mask)
        ner(text)
        assert calls == [len(w.ids) for w in ner.windows(ner.tokenize(text))], ner.long_text
