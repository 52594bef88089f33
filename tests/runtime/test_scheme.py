"""Label schemes (lean: base install): detected from label names, grouped as the transformers pipeline groups
them by default and by the scheme on request, and decoded by Viterbi within the scheme's transitions."""
import numpy as np
import pytest

from koner.aggregate import Aggregation, Strategy
from koner.decode import Decode
from koner.scheme import Grouping, Scheme, Tagging, decoder, detect, transitions
from koner.tokens import Tokens

pytestmark = pytest.mark.lean

TYPES = ("PS", "LC", "OG")


def _labels(letters: str, suffix: bool = False) -> tuple[str, ...]:
    return ("O",) + tuple((f"{t}-{p}" if suffix else f"{p}-{t}") for t in TYPES for p in letters)


@pytest.mark.parametrize("labels,scheme", [
    (_labels("BI"), Scheme.IOB2),
    (_labels("BIES"), Scheme.BIOES),
    (_labels("BILU"), Scheme.BILOU),
    (_labels("BI", suffix=True), Scheme.SUFFIX),
    (("O",) + TYPES, Scheme.NONE),
    (("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"), Scheme.IOB2),
    (_labels("BMES"), Scheme.BIOES),  # BMES: M- is BIOES's I-
])
def test_the_scheme_is_read_from_the_label_names(labels, scheme):
    assert detect(labels) is scheme


def test_an_unknown_scheme_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="IOB2.*BIOES.*suffix"):
        Scheme.parse("BMES")


# "김민수 씨 서울역" as five tokens: 김 ##민수 씨 서울 ##역
TEXT = "김민수 씨 서울역"
OFFSETS = [(0, 0), (0, 1), (1, 3), (4, 5), (6, 8), (8, 9), (0, 0)]
STRINGS = ["[CLS]", "김", "##민수", "씨", "서울", "##역", "[SEP]"]


def _tokens() -> Tokens:
    special = np.array([True, False, False, False, False, False, True])
    return Tokens(np.arange(7, dtype=np.int64), OFFSETS, special, STRINGS)


def _entities(labels, chosen, grouping=Grouping.PIPELINE, scheme=None, strategy=Strategy.SIMPLE):
    scheme = scheme or detect(labels)
    logits = np.full((7, len(labels)), -5.0, np.float32)
    for row, lab in enumerate(chosen, start=1):
        logits[row, labels.index(lab)] = 5.0
    how = Aggregation(labels, strategy, lambda ps: "".join(p.replace("##", "") for p in ps), -1,
                      tagging=Tagging(labels, scheme, grouping))
    return [(e.label, TEXT[e.start:e.end]) for e in how.entities(TEXT, _tokens(), logits)]


def test_bioes_groups_as_the_pipeline_by_default_and_by_the_scheme_on_request():
    labels = _labels("BIES")
    chosen = ["B-PS", "E-PS", "O", "S-LC", "S-LC"]
    # the pipeline knows B-/I- only: E-PS is a group of its own named PS, each S-LC a run of one label
    assert _entities(labels, chosen) == [("PS", "김"), ("PS", "민수"), ("LC", "서울역")]
    assert _entities(labels, chosen, Grouping.SCHEME) == [("PS", "김민수"), ("LC", "서울"), ("LC", "역")]


def test_suffix_labels_group_as_the_pipeline_names_them_unless_scheme_grouping_is_asked():
    labels = _labels("BI", suffix=True)
    chosen = ["PS-B", "PS-I", "O", "LC-B", "LC-I"]
    # transformers names a group by the label after its first `-`: PS-B -> B; and PS-I is another label
    assert _entities(labels, chosen) == [("B", "김"), ("I", "민수"), ("B", "서울"), ("I", "역")]
    assert _entities(labels, chosen, Grouping.SCHEME) == [("PS", "김민수"), ("LC", "서울역")]


def test_iob1_starts_entities_with_i_and_splits_neighbours_with_b():
    labels = _labels("BI")
    chosen = ["I-PS", "I-PS", "O", "I-LC", "B-LC"]
    assert _entities(labels, chosen, Grouping.SCHEME, Scheme.IOB1) == [("PS", "김민수"), ("LC", "서울"), ("LC", "역")]


def test_labels_without_a_prefix_make_one_entity_per_run():
    labels = ("O",) + TYPES
    assert _entities(labels, ["PS", "PS", "O", "LC", "LC"]) == [("PS", "김민수"), ("LC", "서울역")]
    assert _entities(labels, ["PS", "PS", "O", "LC", "LC"], Grouping.SCHEME) == [("PS", "김민수"), ("LC", "서울역")]


def test_word_level_strategies_group_by_the_scheme_too():
    labels = _labels("BIES")
    chosen = ["S-PS", "S-PS", "O", "B-LC", "E-LC"]  # words: 김민수 (first piece S-PS), 씨, 서울역 (first piece B-LC)
    assert _entities(labels, chosen, Grouping.SCHEME, strategy=Strategy.FIRST) == [("PS", "김민수"), ("LC", "서울역")]


@pytest.mark.parametrize("scheme,letters,bad,good", [
    (Scheme.BIOES, "BIES", ["I-PS", "E-PS"], ["B-PS", "E-PS"]),  # may not start inside
    (Scheme.BIOES, "BIES", ["B-PS", "O"], ["S-PS", "O"]),  # an open entity must end
    (Scheme.BIOES, "BIES", ["S-PS", "B-LC"], ["S-PS", "S-LC"]),  # and may not end open
    (Scheme.BILOU, "BILU", ["B-PS", "U-PS"], ["B-PS", "L-PS"]),
    (Scheme.IOB1, "BI", ["B-PS", "I-PS"], ["I-PS", "I-PS"]),  # IOB1: B- only right after its own type
    (Scheme.IOB2, "BI", ["I-PS", "I-PS"], ["B-PS", "I-PS"]),
])
def test_viterbi_keeps_to_the_schemes_transitions(scheme, letters, bad, good):
    labels = _labels(letters)
    dec = decoder(labels, scheme)
    ids = [labels.index(lab) for lab in bad]
    assert not dec.valid(np.array(ids))
    assert dec.valid(np.array([labels.index(lab) for lab in good]))
    logits = np.full((2, len(labels)), -3.0)
    logits[0, ids[0]], logits[1, ids[1]] = 4.0, 4.0  # the argmax path is the invalid one
    for lab in good:  # the valid alternative is second best
        logits[good.index(lab), labels.index(lab)] = 3.0
    path = [labels[i] for i in dec.decode(logits)]
    assert path == good


def test_viterbi_through_the_aggregation_uses_the_schemes_decoder():
    labels = _labels("BIES")
    dec = decoder(labels, Scheme.BIOES)
    logits = np.full((7, len(labels)), -5.0, np.float32)
    for row, lab in enumerate(["I-PS", "E-PS", "O", "O", "O"], start=1):
        logits[row, labels.index(lab)] = 5.0
    logits[1, labels.index("B-PS")] = 4.0
    how = Aggregation(labels, Strategy.SIMPLE, lambda ps: "".join(ps), -1, Decode.VITERBI, dec,
                      tagging=Tagging(labels, Scheme.BIOES, Grouping.SCHEME))
    assert [(e.label, TEXT[e.start:e.end]) for e in how.entities(TEXT, _tokens(), logits)] == [("PS", "김민수")]


def test_every_scheme_allows_its_own_well_formed_sequences():
    for scheme, letters in [(Scheme.IOB2, "BI"), (Scheme.BIOES, "BIES"), (Scheme.BILOU, "BILU")]:
        labels = _labels(letters)
        allowed, start, end = transitions(labels, scheme)
        o = labels.index("O")
        assert start[o] and end[o] and allowed[o, o]
        assert not allowed[labels.index("B-PS"), labels.index(f"{letters[1]}-LC")]  # no type change inside


def test_bmes_middle_labels_continue_an_entity():
    labels = _labels("BMES")
    dec = decoder(labels, Scheme.BIOES)
    ids = np.array([labels.index(x) for x in ("B-PS", "M-PS", "E-PS")])
    assert dec.valid(ids)
    assert _entities(labels, ["B-PS", "M-PS", "O", "S-LC", "O"], Grouping.SCHEME) == [("PS", "김민수"), ("LC", "서울")]


@pytest.mark.parametrize("scheme,labels", [(Scheme.BIOES, _labels("BI")), (Scheme.BILOU, _labels("BIES")),
                                           (Scheme.SUFFIX, _labels("BI")), (Scheme.IOB2, _labels("BI", suffix=True)),
                                           (Scheme.IOB1, ("O",) + TYPES)])
def test_a_scheme_the_labels_do_not_carry_is_refused(scheme, labels):
    from koner.scheme import check

    with pytest.raises(ValueError, match=f"scheme {scheme.value}: the label list .* leave the scheme out"):
        check(labels, scheme)


def test_a_scheme_that_does_not_fit_the_model_is_refused_at_load(ner):
    from koner import NER

    with pytest.raises(ValueError, match="scheme BIOES: the label list .*here: IOB2"):
        NER.load(scheme="BIOES")
    assert NER.load(scheme="IOB1").scheme is Scheme.IOB1  # same letters: allowed


def test_an_unknown_scheme_in_the_manifest_names_the_file(model_copy):
    import json

    from koner import NER
    from koner.errors import ManifestError

    manifest = json.loads((model_copy / "koner.json").read_text("utf-8"))
    manifest["scheme"] = "BMES"
    (model_copy / "koner.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(ManifestError, match="koner.json: 'scheme' is 'BMES'"):
        NER.load(model_copy)
