"""`koner.Options`: entity options as one value, checked once, the same entities as the keywords."""
import pytest

from koner import NER, Options

pytestmark = pytest.mark.lean

TEXTS = ["아이유 노래 검색해줘.", "어제 서울역에서 삼성전자 직원 김민수 씨를 만났다.", "토트넘 홋스퍼의 손흥민이 런던에서 골을 넣었다."]


@pytest.fixture(scope="module")
def ner():
    return NER.load(workers=1)


def dicts(found):
    return [[e.to_dict() for e in ents] for ents in found]


@pytest.mark.parametrize("values, option", [
    ({"aggregation": "biggest"}, "aggregation"),
    ({"decode": "beam"}, "decode"),
    ({"grouping": "words"}, "grouping"),
    ({"scheme": "IOB3"}, "scheme"),
    ({"long_text": "chunks"}, "long_text"),
    ({"merge_across": "tabs"}, "merge_across"),
    ({"aggregation": "first", "decode": "viterbi"}, "viterbi"),
    ({"aggregation": "none", "long_text": "pipeline"}, "long_text"),
])
def test_a_bad_value_is_refused_when_the_options_are_made(values, option):
    with pytest.raises(ValueError, match=option):
        Options.parse(**values)


def test_an_unknown_option_is_a_type_error_naming_the_options():
    with pytest.raises(TypeError, match="aggregation_strategy.*koner's entity options are aggregation"):
        Options.parse(aggregation_strategy="simple")


def test_options_give_the_same_entities_as_the_keywords(ner):
    opts = Options.parse(decode="viterbi", labels="PS, LC", merge=True)
    assert opts.labels == ("PS", "LC")
    by_options = NER.load(options=opts, workers=1)
    by_keywords = NER.load(decode="viterbi", labels="PS,LC", merge=True, workers=1)
    assert dicts(by_options.batch(TEXTS)) == dicts(by_keywords.batch(TEXTS))
    assert dicts(by_options.batch(TEXTS)) != dicts(ner.batch(TEXTS))  # the options did change the entities
    assert {e.label for ents in by_options.batch(TEXTS) for e in ents} <= {"PS", "LC"}


def test_a_call_overrides_the_model_options(ner):
    text = TEXTS[1]
    ps_only = Options.parse(labels="PS")
    assert dicts([ner(text, options=ps_only)]) == dicts([ner(text, labels="PS")])
    assert {e.label for e in ner(text, options=ps_only)} == {"PS"}
    # a call's keyword wins over its options
    assert dicts([ner(text, options=ps_only, labels="LC")]) == dicts([ner(text, labels="LC")])
    assert dicts(ner.pipe([text], options=ps_only)) == dicts([ner(text, labels="PS")])
    assert ner.mask(text, options=ps_only).text == ner.mask(text, labels="PS").text


def test_load_time_options_cannot_change_per_call(ner):
    with pytest.raises(ValueError, match="long_text can only be set when a model loads"):
        ner(TEXTS[0], options=Options.parse(long_text="pipeline"))


def test_load_takes_keywords_or_options_not_both():
    with pytest.raises(TypeError, match="either as keywords or as options=.*labels"):
        NER.load(options=Options(), labels="PS")


def test_an_unknown_entity_type_is_refused_against_the_model():
    opts = Options.parse(labels="PS,XX")  # types are the model's business: checked when it takes them
    with pytest.raises(ValueError, match="unknown entity type.*'XX'"):
        NER.load(options=opts)


def test_from_mapping_takes_the_fields_of_a_namespace():
    opts = Options.from_mapping({"aggregation": "max", "labels": None, "threads": 2, "input": "x.txt"})
    assert opts == Options.parse(aggregation="max")


def test_options_made_directly_are_checked_too():
    with pytest.raises(ValueError, match="aggregation must be one of"):
        Options(aggregation="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="viterbi"):
        Options(aggregation="first", decode="viterbi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overlap"):
        Options.parse(overlap=-5)
    assert hash(Options(labels=["PS"])) == hash(Options.parse(labels="PS"))  # type: ignore[arg-type]


def test_a_keyword_passed_beside_options_is_refused_even_at_its_default():
    with pytest.raises(TypeError, match="aggregation"):
        NER.load(options=Options.parse(aggregation="first"), aggregation="simple")


def test_options_of_another_type_are_a_clear_type_error(ner):
    with pytest.raises(TypeError, match="options must be a koner.Options"):
        NER.load(options={"aggregation": "first"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options must be a koner.Options"):
        ner(TEXTS[0], options={"labels": "PS"})  # type: ignore[arg-type]


def test_a_missing_folder_is_named_before_a_bad_option():
    from koner import ModelNotFoundError

    with pytest.raises(ModelNotFoundError):
        NER.load("/nonexistent/koner-model", aggregation="first", decode="viterbi")


def test_window_is_checked_when_options_are_made():
    assert Options.parse(window=384).window == 384 and Options().window is None and Options().overlap is None
    for bad in (2, 0, True, 2.5, "256"):
        with pytest.raises(ValueError, match="window must be an integer"):
            Options.parse(window=bad)
    with pytest.raises(ValueError, match="long_text='pipeline'"):  # the pipeline's chunks are the model's length
        Options.parse(window=256, long_text="pipeline")
