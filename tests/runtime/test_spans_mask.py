"""Type filter, merging split spans, masking personal data, and the extended dict, on real Korean text."""
import json
import subprocess
import sys
import unicodedata

import pytest

from koner import NER, Entity
from koner.mask import mask
from koner.spans import MERGE_TAGS, refine, span_options

pytestmark = pytest.mark.lean

TEXT = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다."
KONER = [sys.executable, "-m", "koner.cli"]


def test_type_filter_on_load_and_per_call(ner):
    everything = ner(TEXT)
    assert {e.label for e in everything} >= {"PS", "LC", "OG", "DT"}
    people = NER.load(labels="PS")
    assert [e.text for e in people(TEXT)] == [e.text for e in everything if e.label == "PS"] == ["아이유", "김민수"]
    assert {e.label for e in ner(TEXT, labels=["LC", "OG"])} == {"LC", "OG"}
    assert [e.label for e in people(TEXT, labels="DT")] == ["DT"]  # a call's choice wins over the load's
    with pytest.raises(ValueError, match=r"unknown entity type\(s\) 'XX'.*knows PS, FD, TR"):
        ner(TEXT, labels="PS,XX")
    with pytest.raises(ValueError, match="labels"):
        NER.load(labels=["person"])


def test_merge_is_off_by_default_and_joins_only_what_it_is_asked_to(ner):
    text = "주소는 서울 서초구 반포대로 201이다."
    plain = ner(text)
    places = [e for e in plain if e.label == "LC"]
    assert [e.text for e in places][:2] == ["서울", "서초구"]  # split by default, as the pipeline does
    merged = [e for e in ner(text, merge=["LC"]) if e.label == "LC"]
    whole = merged[0]
    assert whole.text.startswith("서울 서초구") and whole.start == places[0].start
    parts = [e for e in places if whole.start <= e.start and e.end <= whole.end]
    assert len(parts) >= 2 and whole.text == text[whole.start:whole.end] == whole.word
    weights = [e.end - e.start for e in parts]
    assert whole.score == pytest.approx(sum(e.score * w for e, w in zip(parts, weights)) / sum(weights))
    assert [e.to_dict() for e in ner(text, merge=True)] == [e.to_dict() for e in ner(text, merge=list(MERGE_TAGS))]
    assert "LC" not in MERGE_TAGS  # merging places lowered held-out F1


def test_merge_rules_on_spans():
    text = "27회차 A·B C-D E\nF"

    def ent(label, start, end, score=0.5):
        return Entity(label=label, start=start, end=end, score=score, text=text[start:end], word=text[start:end])

    ents = [ent("QT", 0, 2, 0.9), ent("QT", 3, 4, 0.3),  # "27" and "차" are apart: "회" between
            ent("OG", 5, 6), ent("OG", 7, 8), ent("OG", 9, 10), ent("OG", 11, 12), ent("OG", 13, 14),
            ent("OG", 15, 16)]
    types = ("QT", "OG")
    space = list(refine(iter(ents), text, span_options(types, merge=["OG", "QT"])))
    assert [e.text for e in space] == ["27", "차", "A", "B C", "D E", "F"]  # `·`, `-` and a newline never join
    punct = list(refine(iter(ents), text, span_options(types, merge=["OG"], across="punct")))
    assert [e.text for e in punct] == ["27", "차", "A·B C-D E", "F"]
    touching = [ent("QT", 0, 2, 0.9), ent("QT", 2, 3, 0.3)]
    (one,) = refine(iter(touching), text, span_options(types, merge=["QT"]))
    assert one.text == "27회" and one.score == pytest.approx((0.9 * 2 + 0.3) / 3)
    with pytest.raises(ValueError, match="merge_across"):
        span_options(types, merge=True, across="tabs")


@pytest.mark.parametrize("style", ["tag", "char", "hash"])
def test_masking_styles_keep_offsets_exact(ner, style):
    text = "👨‍👩‍👧 가족과 e\u0301 아이유가 ᄀᄁ 서울역에서 김민수를 만났다. 아이유 노래도 들었다."
    m = ner.mask(text, labels="PS", style=style, salt="fixed")
    people = [e for e in ner(text) if e.label == "PS"]
    assert [(r.start, r.end, r.original) for r in m.replacements] == [(e.start, e.end, e.text) for e in people]
    for r in m.replacements:
        assert text[r.start:r.end] == r.original and r.label == "PS"
    rebuilt, pos = [], 0
    for r in m.replacements:  # the masked text is the original with exactly these spans replaced
        rebuilt += [text[pos:r.start], r.replacement]
        pos = r.end
    assert m.text == "".join(rebuilt) + text[pos:]
    assert m.text.startswith("👨‍👩‍👧 가족과 ") and "ᄀᄁ 서울역에서" in m.text and "아이유" not in m.text
    if style == "char":
        assert len(m.text) == len(text)
    if style == "hash":
        names = {r.original: r.replacement for r in m.replacements}
        assert all(r.replacement == names[r.original] for r in m.replacements)  # one pseudonym per name
        assert sum(r.original == "아이유" for r in m.replacements) == 2 and names["아이유"] != names["김민수"]
        assert ner.mask(text, labels="PS", style="hash", salt="fixed").text == m.text
        assert ner.mask(text, labels="PS", style="hash", salt="other").text != m.text


def test_masking_with_a_callable_and_bad_styles(ner):
    m = ner.mask(TEXT, labels="PS", style=lambda e: f"<{e.label}:{len(e.text)}>")
    assert m.text == "어제 <PS:3>가 서울역에서 삼성전자 직원 <PS:3> 씨를 만났다."
    with pytest.raises(ValueError, match="style"):
        ner.mask(TEXT, style="blur")
    with pytest.raises(TypeError):
        ner.mask(TEXT, style=lambda e: 3)


def test_overlapping_and_adjacent_entities_never_corrupt_the_text():
    text = "김민수박지성 서울"

    def ent(label, start, end):
        return Entity(label=label, start=start, end=end, score=1.0, text=text[start:end], word=text[start:end])

    m = mask(text, [ent("PS", 0, 3), ent("PS", 3, 6), ent("PS", 2, 4), ent("LC", 7, 9)], "tag")
    assert m.text == "[PS] [LC]"  # overlapping spans masked once, as their union; nothing doubled or lost
    assert [(r.start, r.end) for r in m.replacements] == [(0, 6), (7, 9)]
    adjacent = mask(text, [ent("PS", 0, 3), ent("PS", 3, 6)], "char")
    assert adjacent.text == "****** 서울" and [(r.start, r.end) for r in adjacent.replacements] == [(0, 3), (3, 6)]


def test_a_5000_character_text_is_masked_whole(ner):
    unit = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. "
    text = (unit * (5000 // len(unit) + 1))[:5000]
    m = ner.mask(text, labels="PS", style="char")
    assert len(m.text) == 5000 and unicodedata.normalize("NFC", m.text) == m.text
    assert m.text.count("***") >= 2 * (5000 // len(unit)) - 2 and "아이유" not in m.text[:-len(unit)]


def test_extended_dict_adds_the_exact_slice(ner):
    e = ner("아이유 노래 검색해줘.")[0]
    assert e.to_dict() == {"entity_group": "PS", "score": e.score, "word": "아이유", "start": 0, "end": 3}
    assert e.to_dict(extended=True) == {**e.to_dict(), "text": "아이유"}
    sub = next(x for x in ner("토트넘 27회차 경기") if x.word.startswith("##"))
    assert sub.to_dict(extended=True)["text"] == sub.word[2:]


def test_cli_mask_lines_jsonl_and_labels():
    out = subprocess.run(KONER + ["mask", "--labels", "PS"], input=TEXT + "\n부산 날씨 알려줘.\n", capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["어제 [PS]가 서울역에서 삼성전자 직원 [PS] 씨를 만났다.", "부산 날씨 알려줘."]
    rec = json.dumps({"id": "a1", "text": TEXT}, ensure_ascii=False)
    js = subprocess.run(KONER + ["mask", "--jsonl", "--style", "hash", "--salt", "k", "--labels", "PS"], input=rec + "\n",
                        capture_output=True, text=True, timeout=120)
    got = json.loads(js.stdout)
    assert got["id"] == "a1" and [r["original"] for r in got["replacements"]] == ["아이유", "김민수"]
    assert all(TEXT[r["start"]:r["end"]] == r["original"] for r in got["replacements"])
    bad = subprocess.run(KONER + ["ner", "--labels", "PS,XX", "서울"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "knows PS" in bad.stderr
    ents = json.loads(subprocess.run(KONER + ["ner", TEXT], capture_output=True, text=True, timeout=120).stdout)
    assert all(e["text"] == TEXT[e["start"]:e["end"]] for e in ents["entities"])
