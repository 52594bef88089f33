"""Missing, corrupt or inconsistent model folders raise named exceptions that name the file."""
import json

import pytest

from support.models import rehash
from koner import (NER, DamagedFileError, LabelMismatchError, ManifestError, ModelNotFoundError, OnnxModelError,
                   TokenizerError, VocabularyMismatchError)

pytestmark = pytest.mark.lean


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
    with pytest.raises(DamagedFileError, match=r"model.onnx: has 24,589 bytes but koner.json records 73,769"):
        NER.load(model_copy)
    rehash(model_copy)  # a manifest that agrees with the cut file: the graph itself is refused
    with pytest.raises(OnnxModelError, match="model.onnx: is not an ONNX model"):
        NER.load(model_copy)


def test_a_model_onnxruntime_cannot_load_is_named(model_copy):
    (model_copy / "model.onnx").write_bytes(b"")  # an empty protobuf message: a model without a graph
    rehash(model_copy)
    with pytest.raises(OnnxModelError, match="model.onnx: .*the file may be truncated"):
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
    rehash(model_copy)
    with pytest.raises(TokenizerError, match="jamo"):
        NER.load(model_copy)


def test_tokenizer_larger_than_the_embedding_table(model_copy):
    spec = json.loads((model_copy / "tokenizer.json").read_text("utf-8"))
    for k in range(200):
        spec["model"]["vocab"][f"새토큰{k}"] = 35000 + k
    (model_copy / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    rehash(model_copy)
    with pytest.raises(VocabularyMismatchError, match="tokenizer.json: has token id 35,199 but the embedding table "
                                                      "of model.onnx has 35,000 rows"):
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
    with pytest.raises(DamagedFileError, match=r"model.onnx.data: has [\d,]+ bytes but koner.json records"):
        NER.load(model_copy)


# --- the bytes export wrote: sizes and sha256 checked at load, remembered per file --------------------------------

def _flip(path, count, seed=0):
    """Invert `count` bytes of a file at random places, as a bad disk or a broken copy would."""
    import random

    data = bytearray(path.read_bytes())
    for i in random.Random(seed).sample(range(len(data)), count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_the_weights_are_named_at_load(model_copy):
    _flip(model_copy / "model.onnx.data", 200_000)
    with pytest.raises(DamagedFileError, match=r"model.onnx.data: is not the file export wrote \(its sha256 differs "
                                               r"from the one koner.json records\).*re-copy the whole model folder"):
        NER.load(model_copy)


def test_a_garbage_weights_file_is_blamed_on_itself_not_on_the_tokenizer(model_copy):
    import random

    path = model_copy / "model.onnx.data"
    path.write_bytes(random.Random(1).randbytes(path.stat().st_size))
    with pytest.raises(DamagedFileError, match="model.onnx.data: is not the file export wrote"):
        NER.load(model_copy)


def test_an_edited_tokenizer_is_named(model_copy):
    path = model_copy / "tokenizer.json"
    data = path.read_bytes()
    assert data.count(b'"lowercase": false') == 1
    path.write_bytes(data.replace(b'"lowercase": false', b'"lowercase": true '))  # same size, another tokenizer
    with pytest.raises(DamagedFileError, match="tokenizer.json: is not the file export wrote"):
        NER.load(model_copy)


def test_a_folder_is_hashed_once_then_remembered_until_a_file_changes(model_copy, tmp_path, monkeypatch):
    import koner.verify

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    hashed = []
    real = koner.verify.sha256
    monkeypatch.setattr(koner.verify, "sha256", lambda p: hashed.append(p.name) or real(p))
    NER.load(model_copy)
    assert sorted(hashed) == ["model.onnx", "model.onnx.data", "tokenizer.json"]
    assert (tmp_path / "cache" / "koner" / "file-facts.json").is_file()
    hashed.clear()
    ner = NER.load(model_copy)  # a new NER, as a new process would load it: nothing hashed again
    assert hashed == [] and [(e.label, e.text) for e in ner("서울역으로 안내해줘.")] == [("LC", "서울역")]
    _flip(model_copy / "model.onnx.data", 1_000)  # changed after it was remembered: hashed again, refused
    with pytest.raises(DamagedFileError, match="model.onnx.data: is not the file export wrote"):
        NER.load(model_copy)
    assert hashed == ["model.onnx.data"]


@pytest.mark.parametrize("cache", ["a file where the folder should be", "not JSON"])
def test_a_cache_that_cannot_be_used_is_ignored(model_copy, tmp_path, monkeypatch, cache):
    base = tmp_path / "cache"
    if cache == "not JSON":
        (base / "koner").mkdir(parents=True)
        (base / "koner" / "file-facts.json").write_text("[" * 100_000, "utf-8")
    else:
        base.write_text("x", "utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(base))
    assert [(e.label, e.text) for e in NER.load(model_copy)("서울역으로 안내해줘.")] == [("LC", "서울역")]
    _flip(model_copy / "model.onnx.data", 1_000)
    with pytest.raises(DamagedFileError):
        NER.load(model_copy)


# --- only files inside the folder ----------------------------------------------------------------------------------

@pytest.mark.parametrize("key,value", [("model_file", "/etc/passwd"), ("tokenizer_file", "../tokenizer.json"),
                                       ("data_file", "/etc/hostname"), ("model_file", "sub/model.onnx"),
                                       ("tokenizer_file", "..")])
def test_manifest_file_names_outside_the_folder_are_refused(model_copy, key, value):
    from koner import OutsideFolderError

    _edit_manifest(model_copy, lambda m: m.update({key: value}))
    with pytest.raises(OutsideFolderError, match=f"koner.json: '{key}' is .* must be a plain file name in the model "
                                                 "folder"):
        NER.load(model_copy)


def test_files_recorded_outside_the_folder_are_refused(model_copy):
    from koner import OutsideFolderError

    record = {"sha256": "0" * 64, "bytes": 1}
    _edit_manifest(model_copy, lambda m: m["files"].update({"../../etc/passwd": record}))
    with pytest.raises(OutsideFolderError, match=r"koner.json: 'files' names \"../../etc/passwd\""):
        NER.load(model_copy)


def test_a_symlink_out_of_the_folder_is_refused(model_copy, tmp_path):
    from koner import OutsideFolderError

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (model_copy / "tokenizer.json").rename(elsewhere / "tokenizer.json")
    (model_copy / "tokenizer.json").symlink_to(elsewhere / "tokenizer.json")
    with pytest.raises(OutsideFolderError, match="tokenizer.json: is a link to .*elsewhere/tokenizer.json, outside "
                                                 "the model folder"):
        NER.load(model_copy)
    (model_copy / "tokenizer.json").unlink()  # a link to a file in the folder itself is fine
    (elsewhere / "tokenizer.json").rename(model_copy / "vocab-file.json")
    (model_copy / "tokenizer.json").symlink_to("vocab-file.json")
    assert [(e.label, e.text) for e in NER.load(model_copy)("서울역으로 안내해줘.")] == [("LC", "서울역")]


@pytest.mark.parametrize("location", [b"../x/model.data", b"/tmp/x/mod.data"])
def test_graph_weights_outside_the_folder_are_refused_before_onnxruntime_opens_anything(model_copy, tmp_path,
                                                                                        monkeypatch, location):
    import shutil

    import koner.session
    from koner import OutsideFolderError

    graph = model_copy / "model.onnx"
    data = graph.read_bytes()
    assert len(location) == len(b"model.onnx.data") and data.count(b"model.onnx.data") > 50
    graph.write_bytes(data.replace(b"model.onnx.data", location))  # same length: still a valid protobuf
    (tmp_path / "x").mkdir()
    shutil.copy(model_copy / "model.onnx.data", tmp_path / "x" / "model.data")
    rehash(model_copy)
    opened = []
    monkeypatch.setattr(koner.session.ort, "InferenceSession", lambda *a, **k: opened.append(a) or 1 / 0)
    with pytest.raises(OutsideFolderError, match=f"model.onnx: keeps weights in '{location.decode()}', outside the "
                                                 "model folder"):
        NER.load(model_copy)
    assert opened == []


# --- max_length and token ids against the graph's tables --------------------------------------------------------------

@pytest.mark.parametrize("length", [513, 4096])
def test_max_length_beyond_the_position_table_is_refused_at_load(model_copy, length):
    from koner import PositionTableError

    _edit_manifest(model_copy, lambda m: m.update(max_length=length))
    with pytest.raises(PositionTableError, match=f"koner.json: max_length is {length:,} but the position table of "
                                                 "model.onnx holds 512 tokens; set \"max_length\": 512"):
        NER.load(model_copy)


def test_a_max_length_of_a_trillion_is_refused(model_copy):
    _edit_manifest(model_copy, lambda m: m.update(max_length=10 ** 12))
    with pytest.raises(ManifestError, match="'max_length' is 1000000000000: it must be the model's position count"):
        NER.load(model_copy)


def test_a_smaller_max_length_still_loads_and_answers_long_texts(model_copy):
    _edit_manifest(model_copy, lambda m: m.update(max_length=300))
    ner = NER.load(model_copy)
    text = " ".join(["아이유 노래 검색해줘."] * 60)
    assert len(ner.tokenize(text).ids) > 300
    assert [e.text for e in ner(text)].count("아이유") == 60


def test_roberta_style_positions_hold_two_tokens_fewer(model_copy):
    from koner import PositionTableError

    def roberta(offset):
        def change(m):
            m["architecture"].update(model_type="roberta", position_offset=offset)
            if offset is None:  # a folder exported before koner recorded the offset: known from the model type
                del m["architecture"]["position_offset"]
        return change

    for offset in (None, 2):
        _edit_manifest(model_copy, roberta(offset))
        with pytest.raises(PositionTableError, match="position table of model.onnx holds 510 tokens"):
            NER.load(model_copy)
    _edit_manifest(model_copy, roberta(0))  # export records the offset it computed from the checkpoint
    NER.load(model_copy)


@pytest.mark.parametrize("where", ["vocab", "added_tokens"])
def test_a_token_id_beyond_the_embedding_table_is_refused_at_load(model_copy, where):
    spec = json.loads((model_copy / "tokenizer.json").read_text("utf-8"))
    if where == "vocab":
        spec["model"]["vocab"]["새토큰"] = 40_000  # ids 35000-39999 unused: the vocabulary has a gap
    else:
        spec["added_tokens"].append({"id": 40_000, "content": "[새토큰]", "single_word": False, "lstrip": False,
                                     "rstrip": False, "normalized": False, "special": False})
    (model_copy / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    rehash(model_copy)
    top = 40_000 if where == "vocab" else 35_000  # `tokenizers` numbers an added token after the vocabulary
    with pytest.raises(VocabularyMismatchError, match=f"tokenizer.json: has token id {top:,} but the embedding table "
                                                      "of model.onnx has 35,000 rows"):
        NER.load(model_copy)


@pytest.mark.parametrize("section,key,value", [("tokenizer", "lowercase", "false"), ("quantization", "limit_pairs", 0),
                                               ("quantization", "u8u8", "no")])
def test_true_false_settings_must_be_true_or_false(model_copy, section, key, value):
    _edit_manifest(model_copy, lambda m: m[section].update({key: value}))
    with pytest.raises(ManifestError, match=f"koner.json: '{section}'.'{key}' is {json.dumps(value)}, not true or "
                                            "false"):
        NER.load(model_copy)


def test_a_wrong_remembered_hash_never_refuses_a_good_file(model_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    NER.load(model_copy)
    path = tmp_path / "cache" / "koner" / "file-facts.json"
    doc = json.loads(path.read_text("utf-8"))
    for entry in doc["files"].values():
        entry["facts"]["sha256"] = "0" * 64
    path.write_text(json.dumps(doc), "utf-8")
    assert [(e.label, e.text) for e in NER.load(model_copy)("서울역으로 안내해줘.")] == [("LC", "서울역")]


def test_a_model_shorter_than_the_default_window_uses_its_own_length(model_copy):
    # a 100-position model: windows of its length sharing a quarter; the pipeline's stride within its chunks
    _edit_manifest(model_copy, lambda m: m.update(max_length=100))
    ner = NER.load(model_copy, workers=1)
    assert (ner.window, ner.overlap) == (100, 25)
    piped = NER.load(model_copy, long_text="pipeline", workers=1)
    assert (piped.window, piped.overlap) == (100, 97)
    text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 12
    assert sum(e.text == "아이유" for e in ner(text)) == 12
    with pytest.raises(ValueError, match=r"from 0 to 49 tokens \(half a window of 100\), not 60"):
        NER.load(model_copy, overlap=60)
