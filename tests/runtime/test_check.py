"""`koner check [MODEL]` and `koner.check.check_model`: a folder's files verified, its check set run on this CPU;
exit 0 ok, 1 decisive flips, 2 damaged folder."""
import json
import subprocess
import sys

import pytest

from support.checkset import decisive_flip, edit_check_set, entity_token
from support.models import rehash
from koner import exitcodes
from koner.check import check_model
from koner.cpu import int8_path
from koner.manifest import CHECK_FILE

pytestmark = pytest.mark.lean

KONER = [sys.executable, "-m", "koner.cli"]


def check(*args):
    return subprocess.run(KONER + ["check", *args], capture_output=True, text=True, timeout=300)


def test_the_bundled_model_checks_out_on_this_cpu():
    out = check()
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].startswith(f"int8 path: {int8_path()} (the check set was recorded on ")
    assert lines[2].startswith("files verified: 4 of 4 (size and sha256 as koner.json records, inside the folder): "
                               "model.onnx, model.onnx.data, tokenizer.json, check-set.json")
    assert "identical entity lists: " in out.stdout and "decisive flips: 0 " in out.stdout
    assert lines[-1].startswith("result: ok")


def test_check_model_is_a_function_the_server_can_call():
    report = check_model()
    assert report.exit_code == exitcodes.OK and report.has_check_set and report.damaged == []
    assert 30 <= report.sentences <= 60 and report.int8_path == int8_path()
    assert report.new_decisive == [] and report.tokenization_differs == 0
    if report.exported_on == int8_path():  # the same kernels give the recorded answers exactly
        assert report.identical == report.sentences


def test_a_damaged_folder_exits_2_naming_the_file(model_copy):
    path = model_copy / "model.onnx.data"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # one bit
    path.write_bytes(bytes(data))
    (model_copy / "tokenizer.json").unlink()
    out = check(str(model_copy))
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"damaged: {model_copy}/model.onnx.data: is not the file export wrote" in out.stdout
    assert f"damaged: {model_copy}/tokenizer.json: missing" in out.stdout
    assert "files verified: 2 of 4" in out.stdout and "identical entity lists" not in out.stdout
    report = check_model(model_copy)
    assert report.exit_code == 2 and len(report.damaged) == 2


def test_a_file_outside_the_folder_is_damage(model_copy, tmp_path):
    (model_copy / "tokenizer.json").rename(tmp_path / "tokenizer.json")
    (model_copy / "tokenizer.json").symlink_to(tmp_path / "tokenizer.json")
    out = check(str(model_copy))
    assert out.returncode == 2 and "tokenizer.json: is a link to" in out.stdout


def test_a_folder_exported_before_check_sets_only_verifies_its_files(model_copy):
    (model_copy / CHECK_FILE).unlink()
    manifest = json.loads((model_copy / "koner.json").read_text("utf-8"))
    del manifest["files"][CHECK_FILE]
    (model_copy / "koner.json").write_text(json.dumps(manifest), "utf-8")
    out = check(str(model_copy))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "files verified: 3 of 3" in out.stdout and "check set: none" in out.stdout
    assert out.stdout.splitlines()[-1] == "result: ok, files only"


def test_a_label_pytorch_was_sure_against_is_a_decisive_flip_exit_1(model_copy):
    edit_check_set(model_copy, decisive_flip)
    out = check(str(model_copy))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "decisive flips: 1 (tokens where PyTorch preferred its own label by >= 0.1 logits; the export machine " \
           "had 0)" in out.stdout
    assert "PyTorch O, here " in out.stdout and "(PyTorch's margin > 1)" in out.stdout


def test_a_near_tie_flip_is_reported_but_passes(model_copy):
    def change(sentences):  # PyTorch said O, by only 0.05 logits over the label this CPU gives
        k, i = entity_token(sentences)
        here = sentences[k]["int8"][i]
        sentences[k]["pytorch"][i] = sentences[k]["int8"][i] = 0
        sentences[k]["close"] = [c for c in sentences[k]["close"] if c[0] != i] + [[i, here, 0.05]]

    near = len(check_model(model_copy).flips)  # near-ties this CPU has anyway
    edit_check_set(model_copy, change)
    out = check(str(model_copy))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "decisive flips: 0 " in out.stdout and f"near-tie flips: {near + 1}" in out.stdout
    strict = check(str(model_copy), "--tie-margin", "0.01")  # a stricter margin counts it as decisive
    assert strict.returncode == 1 and "decisive flips: 1 " in strict.stdout


def test_a_model_that_does_not_load_is_damage(model_copy):
    manifest = json.loads((model_copy / "koner.json").read_text("utf-8"))
    manifest["max_length"] = 4096
    (model_copy / "koner.json").write_text(json.dumps(manifest), "utf-8")
    out = check(str(model_copy))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "files verified: 4 of 4" in out.stdout and "koner.json: max_length is 4,096 but the position table" \
        in out.stdout and "Traceback" not in out.stderr


def test_an_unreadable_check_set_is_damage(model_copy):
    (model_copy / CHECK_FILE).write_text("[" * 100_000, "utf-8")
    rehash(model_copy)
    out = check(str(model_copy))
    assert out.returncode == 2 and f"{CHECK_FILE}: is not a check set koner can read" in out.stdout


@pytest.mark.parametrize("argv,message", [(["--tie-margin", "2"], "must be a logit margin from 0 to 1"),
                                          (["/no/such/folder"], "/no/such/folder: no such model folder")])
def test_usage_errors_are_one_line(argv, message):
    out = check(*argv)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_a_sentence_tokenized_differently_is_named_as_such(model_copy):
    """Exit 1 names the cause: another tokenization, not labels PyTorch was sure against."""
    def change(sentences):
        sentences[0]["ids"][1] = (sentences[0]["ids"][1] + 1) % 30000

    edit_check_set(model_copy, change)
    out = check(str(model_copy))
    assert out.returncode == 1, out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert "tokenizes 1 of 40 check sentences differently" in last and "PyTorch was sure" not in last
    assert check_model(model_copy).to_dict()["failure"] == last[len("result: "):last.index(" (exit 1)")]
