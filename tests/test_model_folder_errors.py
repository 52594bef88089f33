"""Missing, corrupt or inconsistent model folders raise named exceptions that name the file."""
import json

import pytest

from koner import (NER, LabelMismatchError, ManifestError, ModelNotFoundError, OnnxModelError, TokenizerError,
                   VocabularyMismatchError)


def test_missing_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        NER.load(tmp_path / "nope")


def test_missing_manifest(model_copy):
    (model_copy / "koner.json").unlink()
    with pytest.raises(ManifestError, match="koner.json: missing"):
        NER.load(model_copy)


def test_invalid_manifest_json(model_copy):
    (model_copy / "koner.json").write_text("{not json", "utf-8")
    with pytest.raises(ManifestError, match="koner.json: not valid JSON"):
        NER.load(model_copy)


def test_truncated_model(model_copy):
    data = (model_copy / "model.onnx").read_bytes()
    (model_copy / "model.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(OnnxModelError, match="model.onnx: onnxruntime cannot load it"):
        NER.load(model_copy)


def test_missing_model(model_copy):
    (model_copy / "model.onnx").unlink()
    with pytest.raises(OnnxModelError, match="model.onnx: missing"):
        NER.load(model_copy)


def test_missing_tokenizer(model_copy):
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(TokenizerError, match="tokenizer.json: missing"):
        NER.load(model_copy)


def test_accent_stripping_tokenizer_is_refused(model_copy):
    spec = json.loads((model_copy / "tokenizer.json").read_text("utf-8"))
    spec["normalizer"]["strip_accents"] = True
    (model_copy / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    with pytest.raises(TokenizerError, match="jamo"):
        NER.load(model_copy)


def test_tokenizer_larger_than_the_embedding_table(model_copy):
    spec = json.loads((model_copy / "tokenizer.json").read_text("utf-8"))
    for k in range(200):
        spec["model"]["vocab"][f"새토큰{k}"] = 35000 + k
    (model_copy / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    with pytest.raises(VocabularyMismatchError, match="tokenizer.json: has 35200 tokens"):
        NER.load(model_copy)


def test_label_count_differs_from_model_output(model_copy):
    m = json.loads((model_copy / "koner.json").read_text("utf-8"))
    m["labels"] = m["labels"][:-2]
    (model_copy / "koner.json").write_text(json.dumps(m), "utf-8")
    with pytest.raises(LabelMismatchError, match="koner.json: lists 29 labels but model.onnx outputs 31"):
        NER.load(model_copy)


def _edit_manifest(folder, change):
    path = folder / "koner.json"
    m = json.loads(path.read_text("utf-8"))
    change(m)
    path.write_text(json.dumps(m), "utf-8")


def test_newer_and_older_manifest_formats_are_named(model_copy):
    _edit_manifest(model_copy, lambda m: m.update(format=2))
    with pytest.raises(ManifestError, match="format 2 was written by a newer koner.*pip install -U koner"):
        NER.load(model_copy)
    _edit_manifest(model_copy, lambda m: m.update(format=0))
    with pytest.raises(ManifestError, match="format 0 is older.*re-export"):
        NER.load(model_copy)


def test_a_manifest_without_its_quantization_record_is_refused(model_copy):
    # without it the runtime could not know that an int8 model must run one text per call
    _edit_manifest(model_copy, lambda m: m.pop("quantization"))
    with pytest.raises(ManifestError, match="lacks 'quantization'"):
        NER.load(model_copy)


def test_the_manifest_says_how_the_model_runs(model_copy):
    from koner.manifest import read_manifest

    m = read_manifest(model_copy)
    assert m.quantized and m.prefused and m.model_file == "model.onnx" and m.labels[0] == "O"
    ner = NER.load(model_copy)
    assert ner._rows_alone  # int8: one window per onnxruntime call, never a padded batch
    _edit_manifest(model_copy, lambda m: m.update(quantization=None))
    assert not NER.load(model_copy)._rows_alone


def test_missing_weights_file_is_named(model_copy):
    (model_copy / "model.onnx.data").unlink()
    with pytest.raises(OnnxModelError, match="model.onnx.data: missing: model.onnx keeps its weights there"):
        NER.load(model_copy)


def test_truncated_weights_file_is_named(model_copy):
    path = model_copy / "model.onnx.data"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4096])
    with pytest.raises(OnnxModelError, match=r"model.onnx.data: has [\d,]+ bytes but koner.json records"):
        NER.load(model_copy)
