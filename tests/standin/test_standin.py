"""The stand-in checkpoint folder has the real model's shape, labels and tokenizer."""
import json

from support import ROOT, STANDIN
from support.extras import needs

LABELS = json.loads((ROOT / "standin" / "data" / "koelectra-small-v3-modu-ner.labels.json").read_text("utf-8"))


def test_files_in_the_real_checkpoint_layout():
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "metrics.json", "README.md"):
        assert (STANDIN / name).is_file(), name


def test_config_matches_the_real_architecture_and_label_order():
    cfg = json.loads((STANDIN / "config.json").read_text("utf-8"))
    assert cfg["architectures"] == ["ElectraForTokenClassification"]
    for key in ("embedding_size", "hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
                "vocab_size", "max_position_embeddings", "hidden_act"):
        assert cfg[key] == LABELS["config"][key], key
    assert cfg["id2label"] == LABELS["id2label"]
    assert len(cfg["id2label"]) == 31


def test_tokenizer_settings_and_check_sentence():
    tc = json.loads((STANDIN / "tokenizer_config.json").read_text("utf-8"))
    assert tc["tokenizer_class"] == "ElectraTokenizer"
    assert tc["do_lower_case"] is False
    assert tc.get("strip_accents") in (False, None)
    assert len((STANDIN / "vocab.txt").read_text("utf-8").splitlines()) == 35000
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(STANDIN / "tokenizer.json"))
    assert tok.encode("한국어 ELECTRA를 공유합니다.").ids[1:-1] == [11229, 29173, 13352, 25541, 4110, 7824, 17788, 18]
    assert tok.get_vocab_size() == 35000


def test_metrics_report_heldout_entity_scores():
    m = json.loads((STANDIN / "metrics.json").read_text("utf-8"))
    micro = m["heldout"]["micro"]
    assert micro["support"] == 1825  # the 500 held-out sentences' entities
    assert 0.55 <= micro["f1"] <= 1  # strict IOB2, the figure the model card states
    assert 0 < m["heldout"]["lenient"]["micro"]["f1"] <= micro["f1"]
    assert set(m["heldout"]["per_tag"]) >= {"PS", "LC", "OG", "DT", "QT"}
    assert 0 < m["heldout"]["token_accuracy"] <= 1


def _evaluator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("standin_evaluate", ROOT / "standin" / "recipe" / "evaluate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_strict_scores_ignore_a_stray_inside_label_and_lenient_scores_count_it():
    # 김민수 씨가 서울역에 갔다 -> 김 ##민수 씨 ##가 서울 ##역 ##에 갔다 ##다: the prediction misses
    # 서울역's B- and tags its second piece I-LC only.
    gold = [["B-PS", "I-PS", "O", "O", "B-LC", "I-LC", "O", "O", "O"]]
    pred = [["B-PS", "I-PS", "O", "O", "O", "I-LC", "O", "O", "O"]]
    s = _evaluator().entity_scores(gold, pred)
    assert s["micro"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert s["lenient"]["micro"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert s["per_tag"]["LC"]["recall"] == 0.0 and "LC" in s["lenient"]["per_tag"]
    assert s["token_accuracy"] == round(8 / 9, 4)


def test_loads_offline_with_transformers_and_finds_seoul_station(monkeypatch):
    needs("torch")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    model = AutoModelForTokenClassification.from_pretrained(str(STANDIN))
    tok = AutoTokenizer.from_pretrained(str(STANDIN))
    assert model.config.num_labels == 31 and tok.is_fast
    ents = pipeline("ner", model=model, tokenizer=tok, aggregation_strategy="simple")("서울역으로 안내해줘.")
    assert {(e["entity_group"], e["word"], e["start"], e["end"]) for e in ents} >= {("LC", "서울역", 0, 3)}


def _recipe(name: str):
    import importlib

    return importlib.import_module(f"standin.recipe.{name}")


def test_klue_dev_labels_the_konec_sentences_so_the_heldout_ids_are_held_out_under_both():
    prepare = _recipe("prepare")
    data = ROOT / "standin" / "data"
    konec = prepare.read_konec(data / "konec-dev.tsv", prepare.load_subtype_map())
    klue = prepare.read_klue(data / "klue-ner-v1.1-dev.tsv.xz")
    assert [s[0] for s in klue] == [s[0] for s in konec]  # same ids, same order: one text, two labellings
    first = dict((sid, (text, labels)) for sid, text, labels in klue)["klue-ner-v1_dev_00000-wikitree"]
    assert first[0].startswith("경찰은 또 성매매") and first[1][:3] == ["B-OG", "I-OG", "O"]
    assert {lab.split("-", 1)[-1] for _, _, labels in klue for lab in labels} == {"O", "PS", "LC", "OG", "DT", "TI", "QT"}
    held = prepare.heldout_ids([s[0] for s in konec])
    assert len(held) == 500 and held <= {s[0] for s in klue}


def test_a_klue_o_target_allows_o_and_the_nine_tags_klue_does_not_mark():
    torch = needs("torch")
    train = _recipe("train")
    id2label, _ = train.labels_spec()
    mask = train.partial_log_mask(id2label, "cpu")
    allowed = {id2label[i] for i in range(len(id2label)) if mask[i] == 0}
    assert "O" in allowed and {"B-AF", "I-AF", "B-TM", "I-CV"} <= allowed
    assert not allowed & {"B-PS", "I-PS", "B-LC", "B-OG", "B-DT", "B-TI", "I-QT"}
    torch.manual_seed(0)
    logits = torch.randn(1, 2, len(id2label))
    b_ps = next(i for i, lab in id2label.items() if lab == "B-PS")
    y = torch.tensor([[b_ps, train.PARTIAL_O]])
    probs = logits.softmax(-1)[0]
    want = -(probs[0, b_ps].log() + probs[1][mask == 0].sum().log()) / 2
    assert torch.allclose(train.token_loss(logits, y, mask), want, atol=1e-6)
    # a full O target scores O alone, as plain cross-entropy does
    y_full = torch.tensor([[b_ps, 0]])
    ce = torch.nn.functional.cross_entropy(logits[0], y_full[0])
    assert torch.allclose(train.token_loss(logits, y_full, mask), ce, atol=1e-6)
