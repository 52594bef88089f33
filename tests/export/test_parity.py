"""The parity suite on the stand-in: fp32 matches the transformers pipeline exactly; broken models fail."""
import json
import shutil

import numpy as np
import pytest

from support import STANDIN
from support.models import rehash
from support.extras import needs

needs("torch")

from koner_export.checkpoint import load  # noqa: E402
from koner_export.parity import load_corpus, run_parity  # noqa: E402


@pytest.fixture(scope="module")
def ckpt():
    return load(STANDIN)


@pytest.fixture(scope="module")
def full_report(ckpt, export_dir):
    return run_parity(ckpt, export_dir)


def test_corpus_covers_every_category():
    rows = load_corpus()
    cats = {r["category"] for r in rows}
    assert cats >= {"heldout", "command", "numbers", "latin", "quotes", "unicode", "paragraph", "long"}
    assert sum(r["category"] == "heldout" for r in rows) == 500
    sample = load_corpus(sample=60)
    assert {r["category"] for r in sample} == cats and len(sample) <= 70


def test_fp32_runtime_equals_the_transformers_pipeline(full_report):
    s = full_report["summary"]
    assert s["texts_within_max_length"] >= 400
    assert s["tokenization_identical"] == 1.0
    assert s["fp32_max_abs_logit_diff"] <= 1e-4
    assert s["fp32_token_agreement"] == 1.0
    for strategy in ("none", "simple", "first", "average", "max"):
        assert s["strategies"][strategy]["fp32_identical"] == 1.0, strategy
        assert s["strategies"][strategy]["fp32_max_score_diff"] <= 1e-4, strategy


def test_report_has_int8_figures_and_readable_summary(full_report):
    s = full_report["summary"]
    assert 0.99 <= s["int8_token_agreement"] <= 1
    assert s["gold"]["sentences"] == 500 and 0 < s["gold"]["pytorch_f1"] < 1
    assert "koner parity" in full_report["markdown"]
    for flip in full_report["worst_disagreements"]:
        assert flip["pytorch"] != flip["int8"] and 0 < flip["pytorch_p"] <= 1
    flips = s["int8_flips"]
    assert 0 < flips["texts"] <= flips["tokens"] <= 50  # a few rounding flips, each listed with its text
    assert {f["id"] for f in full_report["worst_disagreements"]} <= {r["id"] for r in load_corpus()}
    assert "near-ties" in full_report["markdown"] and s["pytorch_near_ties"]["texts"] >= 1


def test_int8_flips_only_where_pytorch_is_undecided(full_report):
    """Rounding may swap two labels whose logits PyTorch itself puts within a few hundredths, nothing more."""
    margin = full_report["summary"]["int8_flips"]["max_pytorch_logit_margin"]
    assert margin is None or margin < 0.25


def test_the_default_export_passes_the_decisive_flip_gate(full_report):
    s = full_report["summary"]
    assert full_report["passed"], full_report["failures"]
    assert s["int8_flips"]["decisive_tokens"] == 0 and s["int8_decisive_texts"] == 0
    assert s["int8_flips"]["near_tie_tokens"] == s["int8_flips"]["tokens"]
    target = s["targets"]["int8_simple_identical"]  # still reported, with its target, but not a gate
    assert target["target"] == 0.99 and 0.9 < target["value"] < 1
    assert "not a gate" in full_report["markdown"] and "decisive" in full_report["markdown"]


def test_the_gate_catches_subtle_damage_that_coin_flips_do_not_explain(ckpt, tmp_path):
    """Noise in one encoder layer (logits move by ~0.1-0.5) flips tokens PyTorch was sure of: decisive."""
    import torch
    from transformers import AutoModelForTokenClassification

    from koner_export import export_model

    noisy = tmp_path / "noisy-checkpoint"
    shutil.copytree(STANDIN, noisy)
    model = AutoModelForTokenClassification.from_pretrained(str(STANDIN)).eval()
    w = dict(model.named_parameters())["electra.encoder.layer.5.output.dense.weight"]
    with torch.no_grad():
        w.add_(torch.randn(w.shape, generator=torch.Generator().manual_seed(0)) * w.std() * 2.0)
    model.save_pretrained(str(noisy))
    out = tmp_path / "noisy-export"
    export_model(str(noisy), out, parity=False, progress=lambda m: None)
    rep = run_parity(ckpt, out, sample=200)  # the damaged export against the real checkpoint
    assert not rep["passed"]
    assert any("differ decisively" in f for f in rep["failures"]), rep["failures"]
    assert rep["summary"]["int8_flips"]["decisive_tokens"] >= 3 and rep["decisive_flips"]
    assert rep["summary"]["int8_token_agreement"] >= 0.99  # token agreement alone would have let it through


def test_the_outside_corpus_has_what_the_export_never_saw(ckpt, export_dir):
    from koner_export.corpus import DATA

    rows = load_corpus(DATA / "outside-corpus.jsonl")
    inside = {r["text"] for r in load_corpus()} | {json.loads(l)["text"] for l in open(DATA / "calibration.jsonl",
                                                                                       encoding="utf-8")}
    assert len(rows) >= 1000 and not inside & {r["text"] for r in rows}
    assert {r["category"] for r in rows} == {"news", "review", "command"}
    rep = run_parity(ckpt, export_dir, corpus=DATA / "outside-corpus.jsonl", sample=300)
    assert len(rep["summary"]["categories"]) == 3 and rep["summary"]["texts"] <= 300
    assert rep["passed"], rep["failures"]


def test_bundled_model_keeps_token_labels_and_gold_f1(ckpt):
    from koner.ner import DEFAULT_MODEL

    rep = run_parity(ckpt, DEFAULT_MODEL, sample=150)
    s = rep["summary"]
    assert s["tokenization_identical"] == 1.0
    assert s["int8_token_agreement"] >= 0.995
    assert s["gold"]["drop"] <= 0.005
    assert all(v["fp32_identical"] == 1.0 for v in s["strategies"].values())


def test_swapped_labels_in_the_manifest_fail(ckpt, export_dir, tmp_path):
    bad = tmp_path / "swapped"
    shutil.copytree(export_dir, bad)
    m = json.loads((bad / "koner.json").read_text("utf-8"))
    m["labels"][1], m["labels"][11] = m["labels"][11], m["labels"][1]  # B-PS <-> B-LC
    (bad / "koner.json").write_text(json.dumps(m, ensure_ascii=False), "utf-8")
    rep = run_parity(ckpt, bad, sample=40)
    assert not rep["passed"]
    assert any("fp32 'simple' entities identical" in f for f in rep["failures"])


def test_scrambled_classifier_fails(ckpt, export_dir, tmp_path):
    import onnx
    from onnx import numpy_helper

    bad = tmp_path / "scrambled"
    shutil.copytree(export_dir, bad)
    model = onnx.load(str(bad / "model.onnx"))
    rng = np.random.default_rng(0)
    hit = False
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.ndim == 2 and arr.shape[-1] == 31:  # the quantized classifier weight
            init.CopyFrom(numpy_helper.from_array(rng.permutation(arr.ravel()).reshape(arr.shape), init.name))
            hit = True
    assert hit
    onnx.save(model, str(bad / "model.onnx"))
    rehash(bad)  # koner.json agrees with the scrambled graph: the load checks pass, the parity gate must catch it
    rep = run_parity(ckpt, bad, sample=40)
    assert not rep["passed"]
    assert any("int8 token labels agree with PyTorch" in f for f in rep["failures"])
    assert rep["summary"]["int8_flips"]["max_pytorch_logit_margin"] > 1  # confident labels flipped: not near-ties


def test_a_model_compared_with_itself_gives_the_known_perfect_report(ckpt, export_dir, tmp_path):
    """Known answers: the fp32 graph standing in for the int8 one agrees with itself on every token and text."""
    same = tmp_path / "same"
    shutil.copytree(export_dir, same)
    manifest = json.loads((same / "koner.json").read_text("utf-8"))
    manifest["model_file"] = "model-fp32.onnx"
    (same / "koner.json").write_text(json.dumps(manifest), "utf-8")
    rep = run_parity(ckpt, same, sample=40)
    s = rep["summary"]
    assert rep["passed"] and rep["failures"] == []
    assert s["texts"] == 40 and s["int8_token_agreement"] == 1.0 and s["fp32_token_agreement"] == 1.0
    assert s["int8_flips"] == {"tokens": 0, "texts": 0, "max_pytorch_logit_margin": None, "decisive_tokens": 0,
                               "near_tie_tokens": 0, "tie_margin": s["int8_flips"]["tie_margin"]}
    assert s["int8_decisive_texts"] == 0 and rep["worst_disagreements"] == []
    assert s["targets"]["int8_simple_identical"] == {"target": 0.99, "value": 1.0, "met": True}
    assert all(v["int8_identical"] == 1.0 for v in s["strategies"].values())
    from koner.cpu import int8_path

    assert s["int8_path"] == int8_path() and f"int8 path is {int8_path()}" in rep["markdown"]
