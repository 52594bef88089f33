"""A float (fp32) model folder: padded batches of several texts per call, read-ahead and error positions."""
import pytest

from support.extras import needs

needs("torch")  # the fp32 file comes from an export of the stand-in

from support.models import fail_on  # noqa: E402
from koner import NER, WorkerError  # noqa: E402

TEXTS = ["아이유 노래 검색해줘.", "서울역으로 안내해줘.", "에어컨 온도 3도 올려줘.", "",
         "2023년 3월 15일 오후 3시에 삼성전자 본사에서 이재용 회장이 기자회견을 열었다.", "😀 부산 😀",
         "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다.", "BTS 신곡 틀어줘.", "부산 날씨 알려줘.",
         "토트넘 홋스퍼의 27회차 경기"] * 3


@pytest.fixture(scope="module")
def fp32(export_dir):
    ner = NER.load(export_dir, model_file="model-fp32.onnx", workers=2)
    assert not ner.session.quantized
    return ner


def _key(ents):
    return [(e.label, e.start, e.end, e.word) for e in ents]


def test_padded_batches_of_several_texts_give_each_texts_own_entities(fp32):
    run, shapes = fp32.session.run, []

    def counting(ids, mask):
        shapes.append(ids.shape)
        return run(ids, mask)

    fp32.session.run = counting
    try:
        alone = [fp32(t) for t in TEXTS]
        assert all(s[0] == 1 for s in shapes)
        shapes.clear()
        batched = fp32.batch(TEXTS, batch_size=8)
    finally:
        fp32.session.run = run
    assert max(s[0] for s in shapes) > 1  # several texts of different lengths padded into one call
    assert [_key(b) for b in batched] == [_key(a) for a in alone]
    for a, b in zip(alone, batched):
        assert [e.score for e in b] == pytest.approx([e.score for e in a], abs=1e-4)
    assert sum(map(len, alone)) > 20


def test_pipe_reads_at_most_workers_times_batch_size_ahead(fp32):
    pulled = []

    def source():
        for i in range(400):
            pulled.append(i)
            yield TEXTS[i % len(TEXTS)]

    workers, batch_size = 2, 8
    for k, _ in enumerate(fp32.pipe(source(), workers=workers, batch_size=batch_size)):
        assert len(pulled) - (k + 1) <= workers * batch_size, (k, len(pulled))
        if k == 100:
            break


def test_a_bad_text_in_a_padded_batch_is_named_by_its_input_position(fp32):
    run = fp32.session.run
    fail_on(fp32, "폭탄")
    texts = TEXTS[:9] + ["폭탄 테러"] + TEXTS[:9]
    got = []
    try:
        with pytest.raises(WorkerError) as err:
            for ents in fp32.pipe(texts, batch_size=8, workers=2):
                got.append(ents)
    finally:
        fp32.session.run = run
    assert err.value.index == 9 and "input 9" in str(err.value) and "onnxruntime failed" in str(err.value)
    assert [_key(g) for g in got] == [_key(fp32(t)) for t in TEXTS[:9]]
