"""koner.json, read by one owner (manifest.py): any broken manifest is a ManifestError that names the file, for
`NER.load` and for every command (one `koner:` line, exit 2, never a traceback)."""
import json
import subprocess
import sys

import pytest

from support.extras import needs

from koner import NER, ManifestError
from koner.manifest import MANIFEST_FILE, parse_manifest, read_manifest

pytestmark = pytest.mark.lean

KONER = [sys.executable, "-m", "koner.cli"]


def _broken(folder, kind: str) -> None:
    path = folder / MANIFEST_FILE
    if kind == "100,000 [":
        path.write_text("[" * 100_000, "utf-8")
    elif kind == "5,000-digit max_length":
        text = path.read_text("utf-8")
        path.write_text(text.replace('"max_length": 512', '"max_length": ' + "9" * 5000), "utf-8")
        assert "9" * 5000 in path.read_text("utf-8")
    else:
        raise ValueError(kind)


BROKEN = ["100,000 [", "5,000-digit max_length"]
MESSAGES = {"100,000 [": "koner.json: not valid JSON (nested too deeply)",
            "5,000-digit max_length": "koner.json: not a koner manifest (not UTF-8 text, or a number thousands of "
                                      "digits long)"}


@pytest.mark.parametrize("kind", BROKEN)
def test_a_broken_manifest_is_a_manifest_error(model_copy, kind):
    _broken(model_copy, kind)
    with pytest.raises(ManifestError, match=MESSAGES[kind].replace("(", r"\(").replace(")", r"\)")):
        NER.load(model_copy)


@pytest.mark.parametrize("kind", BROKEN)
@pytest.mark.parametrize("verb", ["ner", "serve", "ner-dataset", "check"])
def test_every_command_reports_a_broken_manifest_in_one_line(model_copy, tmp_path, kind, verb):
    if verb == "serve":
        needs("uvicorn")
    _broken(model_copy, kind)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "서울역으로 안내해줘."}, ensure_ascii=False) + "\n", "utf-8")
    argv = {"ner": ["ner", "--model", str(model_copy), "서울역으로 안내해줘."],
            "serve": ["serve", "--model", str(model_copy), "--port", "0"],
            "ner-dataset": ["ner-dataset", str(src), str(tmp_path / "out.jsonl"), "--model", str(model_copy)],
            "check": ["check", str(model_copy)]}[verb]
    out = subprocess.run(KONER + argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("koner: ") and MESSAGES[kind] in out.stderr
    assert not (tmp_path / "out.jsonl").exists()


def _manifest(model_copy) -> dict:
    return json.loads((model_copy / MANIFEST_FILE).read_text("utf-8"))


@pytest.mark.parametrize("change,message", [
    (lambda m: m.update(max_length=10 ** 4000), "'max_length' is a huge integer"),
    (lambda m: m.update(max_length=True), "'max_length' is true"),
    (lambda m: m.update(format="1"), "'format' is \"1\", not a format number"),
    (lambda m: m.update(format=10 ** 30), "format a huge integer was written by a newer koner"),
    (lambda m: m["tokenizer"].update(unk_id=True), "'tokenizer'.'unk_id' is true, not a token id"),
    (lambda m: m["tokenizer"].update(model_max_length="512"), "'tokenizer'.'model_max_length' is \"512\""),
    (lambda m: m.update(inputs=["input_ids", 7]), "'inputs' must be a list of the graph's input names"),
    (lambda m: m.update(architecture="electra"), "'architecture' must be an object"),
    (lambda m: m["architecture"].update(position_offset=-3), "'architecture'.'position_offset' is -3"),
    (lambda m: m.update(scheme=["IOB2"]), "'scheme' is list, not one of"),
    (lambda m: m.update(files=[]), "'files' must be an object"),
    (lambda m: m["files"]["model.onnx"].update(sha256="abc"), "'files' entry of model.onnx must be"),
    (lambda m: m["files"]["model.onnx"].update(bytes="73769"), "'files' entry of model.onnx must be"),
    # 100,001 labels kept every entry point busy for minutes (a rule per label pair) before the graph's 31
    # outputs refused them
    (lambda m: m.update(labels=["O"] + [f"{p}-T{k}" for k in range(50_000) for p in "BI"]),
     "'labels' lists 100,001 labels; koner takes at most 1,024"),
])
def test_fields_of_the_wrong_type_are_named(model_copy, change, message):
    doc = _manifest(model_copy)
    change(doc)
    with pytest.raises(ManifestError, match="koner.json: " + message.replace("(", r"\(").replace(")", r"\)")):
        parse_manifest(doc, model_copy / MANIFEST_FILE)


def test_a_huge_or_binary_manifest_is_refused_without_reading_it_all(model_copy):
    path = model_copy / MANIFEST_FILE
    with open(path, "wb") as f:
        f.write(b" " * (5 << 20) + b"{}")
    with pytest.raises(ManifestError, match=r"koner.json: is over 4,194,304 bytes, not a koner manifest"):
        read_manifest(model_copy)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ManifestError, match="koner.json: not a koner manifest"):
        read_manifest(model_copy)


def test_a_manifest_linked_from_outside_the_folder_is_refused(model_copy, tmp_path):
    outside = tmp_path / "koner.json"
    (model_copy / MANIFEST_FILE).rename(outside)
    (model_copy / MANIFEST_FILE).symlink_to(outside)
    with pytest.raises(ManifestError, match="koner.json: is a link to a file outside the model folder"):
        NER.load(model_copy)


def test_the_bundled_manifest_reads_as_export_wrote_it():
    from koner.ner import DEFAULT_MODEL

    m = read_manifest(DEFAULT_MODEL)
    assert m.max_length == 512 and m.lowercase is False and m.architecture == "electra"
    assert set(m.files) >= {"model.onnx", "model.onnx.data", "tokenizer.json"}
    assert all(len(r.sha256) == 64 and r.bytes > 0 for r in m.files.values())
