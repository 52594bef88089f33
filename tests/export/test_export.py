"""`koner export`: the stand-in and its 2023 hub layout export to loadable folders; bad input fails cleanly."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import STANDIN
from support.extras import needs

torch = needs("torch")

from koner import NER  # noqa: E402


def koner(*args, env=None):
    return subprocess.run([sys.executable, "-m", "koner.cli", *args], capture_output=True, text=True, timeout=600,
                          env=env)


def test_int8_export_is_small_and_loads(export_dir):
    size = _model_bytes(export_dir)
    assert size <= 19.5e6  # fp32: 56 MB
    manifest = json.loads((export_dir / "koner.json").read_text("utf-8"))
    assert manifest["labels"] == [json.loads((STANDIN / "config.json").read_text())["id2label"][str(i)]
                                  for i in range(31)]
    assert manifest["export"]["validation_max_abs_logit_diff"] <= 1e-4
    assert manifest["quantization"]["weight_type"] == "int8"
    assert set(manifest["files"]) == {"model.onnx", "model.onnx.data", "model-fp32.onnx", "tokenizer.json",
                                      "check-set.json"}
    assert manifest["architecture"]["position_offset"] == 0
    assert manifest["source"]["files"]["model.safetensors"]
    # the file already holds onnxruntime's fused int8 MatMuls, so sessions start without re-fusing the graph
    assert manifest["export"]["graph_optimization"] == "extended"
    assert b"DynamicQuantizeMatMul" in (export_dir / "model.onnx").read_bytes()
    q = manifest["quantization"]
    assert q["embeddings"] == "fp16" and q["float_head"] is True and q["float_projection"] is True
    ents = NER.load(export_dir)("아이유 노래 검색해줘.")
    assert ("PS", "아이유") in {(e.label, e.text) for e in ents}


def _model_bytes(folder) -> int:
    """The model's size on disk: graph and weights file."""
    return sum((folder / n).stat().st_size for n in ("model.onnx", "model.onnx.data"))


def _weights(path):
    """{initializer name: [dims, onnx data type]} and the set of float MatMul weight names of a model file."""
    import onnx

    graph = onnx.load(str(path)).graph
    inits = {i.name: [list(i.dims), i.data_type] for i in graph.initializer}
    float_matmuls = {n.input[1] for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits}
    return inits, float_matmuls


def test_default_keeps_tables_fp16_and_the_projection_and_classifier_in_float(export_dir):
    import onnx

    inits, float_matmuls = _weights(export_dir / "model.onnx")
    assert inits["electra.embeddings.word_embeddings.weight_fp16"] == [[35000, 128], onnx.TensorProto.FLOAT16]
    assert inits["electra.embeddings.position_embeddings.weight_fp16"] == [[512, 128], onnx.TensorProto.FLOAT16]
    shapes = sorted(inits[w][0] for w in float_matmuls)
    assert shapes == [[128, 256], [256, 31]], shapes  # embeddings_project and the classifier, nothing else


def test_int8_embeddings_and_projection_on_request(tmp_path, export_dir):
    import onnx

    out = tmp_path / "small"
    res = koner("export", str(STANDIN), "-o", str(out), "--no-parity", "--int8-embeddings", "--int8-projection")
    assert res.returncode == 0, res.stderr
    inits, float_matmuls = _weights(out / "model.onnx")
    # the word-piece table is int8 with one fp16 scale per row, so rare pieces keep their resolution
    assert inits["electra.embeddings.word_embeddings.weight_quantized"] == [[35000, 128], onnx.TensorProto.INT8]
    assert inits["electra.embeddings.word_embeddings.weight_row_scale"] == [[35000], onnx.TensorProto.FLOAT16]
    assert sorted(inits[w][0] for w in float_matmuls) == [[256, 31]]
    q = json.loads((out / "koner.json").read_text("utf-8"))["quantization"]
    assert q["embeddings"] == "int8" and q["float_projection"] is False
    small, default = _model_bytes(out), _model_bytes(export_dir)
    assert 4.0e6 < default - small < 5.0e6  # 35,512 rows x 128 at 1 byte instead of 2, less the row scales
    assert small <= 14.7e6
    text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다."
    assert {(e.label, e.text) for e in NER.load(out)(text)} >= {("PS", "아이유"), ("OG", "삼성전자")}


def test_2023_hub_layout_exports_to_the_same_labels(tmp_path, export_dir):
    """pytorch_model.bin + vocab.txt + tokenizer_config.json, no safetensors and no tokenizer.json."""
    from safetensors.torch import load_file

    old = tmp_path / "hub-2023"
    old.mkdir()
    for name in ("config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(STANDIN / name, old / name)
    tc = json.loads((STANDIN / "tokenizer_config.json").read_text("utf-8"))
    (old / "tokenizer_config.json").write_text(json.dumps({k: tc[k] for k in (
        "do_lower_case", "tokenizer_class", "model_max_length", "strip_accents", "tokenize_chinese_chars")}))
    torch.save(load_file(str(STANDIN / "model.safetensors")), old / "pytorch_model.bin")
    out = tmp_path / "out"
    res = koner("export", str(old), "-o", str(out), "--no-parity")
    assert res.returncode == 0, res.stderr
    a = json.loads((out / "koner.json").read_text("utf-8"))
    b = json.loads((export_dir / "koner.json").read_text("utf-8"))
    assert a["labels"] == b["labels"]
    text = "2023년 3월 15일 오후 3시에 삼성전자 본사에서 이재용 회장이 기자회견을 열었다."
    assert NER.load(out).tokenizer.encode(text).ids.tolist() == NER.load(export_dir).tokenizer.encode(text).ids.tolist()
    assert [e.to_dict() for e in NER.load(out)(text)] == [e.to_dict() for e in NER.load(export_dir)(text)]


def _fails(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stderr)  # README: a usage or input error exits 2
    assert "Traceback" not in res.stderr, res.stderr
    line = res.stderr.strip().splitlines()[-1]  # progress lines may come first; the error is one line
    assert line.startswith("koner: "), res.stderr
    for n in needles:
        assert n in line, line


def test_missing_path(tmp_path):
    _fails(koner("export", str(tmp_path / "nope"), "-o", str(tmp_path / "o")), "no such folder")
    assert not (tmp_path / "o").exists()


def test_unknown_hub_id_offline(tmp_path, monkeypatch):
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    _fails(koner("export", "no-such-owner/no-such-model", "-o", str(tmp_path / "o"), env=env),
           "cannot reach the Hugging Face hub", "koner export DIR")
    assert not (tmp_path / "o").exists()


def test_folder_without_weights(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(STANDIN, src)
    (src / "model.safetensors").unlink()
    _fails(koner("export", str(src), "-o", str(tmp_path / "o")), "no weights")


def test_folder_without_tokenizer(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(STANDIN, src)
    (src / "tokenizer.json").unlink()
    (src / "vocab.txt").unlink()
    _fails(koner("export", str(src), "-o", str(tmp_path / "o")), "no tokenizer")


def test_not_a_token_classifier(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(STANDIN, src)
    cfg = json.loads((src / "config.json").read_text())
    cfg["architectures"] = ["ElectraForSequenceClassification"]
    (src / "config.json").write_text(json.dumps(cfg))
    _fails(koner("export", str(src), "-o", str(tmp_path / "o")), "not a token classifier")


def test_existing_out_dir_needs_force(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _fails(koner("export", str(STANDIN), "-o", str(out)), "already exists", "--force")
    assert (out / "keep.txt").read_text() == "mine"


def test_out_dir_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    _fails(koner("export", str(STANDIN), "-o", str(blocker / "o")), "no such folder")
    _fails(koner("export", str(STANDIN), "-o", "/proc/koner-out"), "cannot write")


def test_a_bad_corpus_is_one_line_before_any_conversion(tmp_path):
    """--corpus is read first: a missing file, a line cut mid-character or a line without "text" is an input
    error naming the file and line (exit 2), not a failure after the conversion (or a traceback in `parity`)."""
    from koner.ner import DEFAULT_MODEL

    cut = tmp_path / "cut.jsonl"  # a Korean line cut inside a character, as `head -c` leaves it
    line = json.dumps({"text": "서울역으로 안내해줘."}, ensure_ascii=False).encode("utf-8")
    cut.write_bytes(line + b"\n" + line[:-7] + b"\n")
    no_text = tmp_path / "no-text.jsonl"
    no_text.write_text('{"text": "아이유 노래 검색해줘."}\n{"sentence": "부산 날씨 알려줘."}\n', "utf-8")
    out = tmp_path / "o"
    _fails(koner("export", str(STANDIN), "-o", str(out), "--corpus", str(cut)), f"{cut}:2: not UTF-8",
           "save the corpus as UTF-8")
    _fails(koner("export", str(STANDIN), "-o", str(out), "--corpus", str(tmp_path / "nope.jsonl")),
           "nope.jsonl: cannot be read")
    _fails(koner("export", str(STANDIN), "-o", str(out), "--corpus", str(no_text)), f"{no_text}:2", '"text"')
    assert not out.exists() and not list(tmp_path.glob("*.log"))
    _fails(koner("parity", str(STANDIN), str(DEFAULT_MODEL), "--corpus", str(no_text)), f"{no_text}:2", '"text"')


def test_accuracy_aware_quantization_keeps_sensitive_nodes_in_float(tmp_path, export_dir):
    from koner_export.accuracy import CALIBRATION, fit_exclusions
    from koner_export.checkpoint import load
    from koner_export.quantize import QuantOptions

    corpus = tmp_path / "calib.jsonl"
    corpus.write_text("".join(open(CALIBRATION, encoding="utf-8").readlines()[:60]), "utf-8")
    opts, rep = fit_exclusions(load(STANDIN), export_dir / "model-fp32.onnx", QuantOptions(), 1.0, corpus,
                               lambda m: None, min_sentence_agreement=1.0)
    assert rep["full_int8"]["token_agreement"] < 1.0  # the stand-in's near-ties flip under int8
    assert rep["kept_in_float"] and opts.exclude
    ranked = list(rep["sensitivity"])
    assert rep["kept_in_float"] == ranked[:len(rep["kept_in_float"])]  # most sensitive first
    assert rep["result"]["bytes"] > rep["full_int8"]["bytes"]  # what it cost is reported
    assert rep["result"]["token_agreement"] >= rep["full_int8"]["token_agreement"]
    assert rep["met"] is (rep["result"]["token_agreement"] >= 1.0 and rep["result"]["sentence_agreement"] >= 1.0)


def test_min_agreement_is_a_share():
    out = koner("export", str(STANDIN), "-o", "/tmp/never", "--min-agreement", "1.5")
    assert out.returncode == 2 and "--min-agreement" in out.stderr and "Traceback" not in out.stderr
    from koner_export import export_model

    with pytest.raises(ValueError, match="above 0 and at most 1"):
        export_model(str(STANDIN), Path("/tmp/never"), min_agreement=0)


def test_parity_on_a_folder_without_a_manifest_is_one_line(tmp_path):
    out = koner("parity", str(STANDIN), str(tmp_path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "koner.json: missing" in out.stderr


def test_external_weights_and_new_defaults_answer_as_the_embedded_model_on_old_defaults(tmp_path):
    import onnx

    from koner.ner import DEFAULT_MODEL

    folder = tmp_path / "m"
    shutil.copytree(DEFAULT_MODEL, folder)
    onnx.save(onnx.load(str(folder / "model.onnx")), str(folder / "embedded.onnx"))  # weights inside the graph
    assert (folder / "embedded.onnx").stat().st_size > 18e6 > (folder / "model.onnx").stat().st_size * 50
    new = NER.load(folder)  # weights mapped from model.onnx.data, 1 intra-op thread, a worker per CPU
    old = NER.load(folder, model_file="embedded.onnx", threads=2, workers=1,  # the defaults before
                   optimization="basic")  # as koner loads its own exported graph (higher levels re-fuse it)
    from koner_export.corpus import PARITY_CORPUS, texts

    sample = texts(PARITY_CORPUS)[::5]
    for a, b in zip(new.batch(sample), old.batch(sample)):
        assert [(e.label, e.start, e.end, e.word) for e in a] == [(e.label, e.start, e.end, e.word) for e in b]
        assert all(abs(x.score - y.score) < 1e-5 for x, y in zip(a, b))


def test_export_records_a_check_set_that_koner_check_passes_here(export_dir):
    """The check set holds 40 parity-corpus sentences with PyTorch's labels and margins; on the export machine
    `koner check` finds every entity list identical and no decisive flip."""
    from koner.manifest import CHECK_FILE

    doc = json.loads((export_dir / CHECK_FILE).read_text("utf-8"))
    assert len(doc["sentences"]) == 40 and doc["int8_path"]
    assert all(len(s["ids"]) == len(s["int8"]) == len(s["pytorch"]) for s in doc["sentences"])
    assert all(0 < m < 1.0 for s in doc["sentences"] for _, _, m in s["close"])
    out = koner("check", str(export_dir))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "files verified: 5 of 5" in out.stdout and "identical entity lists: 40 of 40" in out.stdout


def test_export_writes_page_aligned_external_weights(export_dir):
    import onnx

    manifest = json.loads((export_dir / "koner.json").read_text("utf-8"))
    assert manifest["data_file"] == "model.onnx.data"
    assert manifest["files"]["model.onnx.data"]["bytes"] == (export_dir / "model.onnx.data").stat().st_size
    graph = onnx.load(str(export_dir / "model.onnx"), load_external_data=False).graph
    offsets = [int(e.value) for t in graph.initializer for e in t.external_data if e.key == "offset"]
    big = [int(e.value) for t in graph.initializer if any(e.key == "length" and int(e.value) >= 65536
                                                          for e in t.external_data)
           for e in t.external_data if e.key == "offset"]
    assert len(offsets) > 50 and len(big) > 50 and all(o % 4096 == 0 for o in big)


def _flip_corpus(tmp_path) -> Path:
    """A few parity texts where the bundled int8 model flips near-tied tokens, and some where it does not."""
    from koner_export.corpus import PARITY_CORPUS

    keep = {"klue-ner-v1_dev_00419-wikitree", "klue-ner-v1_dev_01828-nsmc", "klue-ner-v1_dev_02954-nsmc"}
    rows = [json.loads(l) for l in open(PARITY_CORPUS, encoding="utf-8")]
    picked = [r for r in rows if r["id"] in keep] + [r for r in rows if r["category"] == "command"][:10]
    path = tmp_path / "flips.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked), "utf-8")
    return path


def test_a_parity_miss_keeps_the_export_and_exits_1(tmp_path):
    corpus, out = _flip_corpus(tmp_path), tmp_path / "kept"
    # with --tie-margin 0 every flip counts as decisive: these near-ties then miss the gate
    res = koner("export", str(STANDIN), "-o", str(out), "--corpus", str(corpus), "--tie-margin", "0")
    assert res.returncode == 1, res.stderr
    assert "parity is below its thresholds" in res.stderr and "parity.md" in res.stderr
    manifest = json.loads((out / "koner.json").read_text("utf-8"))
    assert manifest["parity"]["passed"] is False and manifest["parity"]["failures"]
    assert any("differ decisively" in f for f in manifest["parity"]["failures"]) and (out / "parity.md").is_file()
    assert NER.load(out)("아이유 노래 검색해줘.")  # the model it kept works
    strict = tmp_path / "strict"
    res = koner("export", str(STANDIN), "-o", str(strict), "--corpus", str(corpus), "--tie-margin", "0",
                "--require-parity")
    assert res.returncode == 1 and "nothing was written" in res.stderr and not strict.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left either
    commands = tmp_path / "commands.jsonl"  # texts with no flip: the same export passes
    commands.write_text("".join(l for l in corpus.read_text("utf-8").splitlines(True) if '"command"' in l), "utf-8")
    ok = koner("export", str(STANDIN), "-o", str(tmp_path / "ok"), "--corpus", str(commands))
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "ok" / "koner.json").read_text("utf-8"))["parity"]["passed"] is True
    assert "Device set to use" not in ok.stderr and "indexing errors" not in ok.stderr
