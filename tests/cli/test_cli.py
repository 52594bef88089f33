"""`koner ner` on a text, on stdin lines and on JSONL, with bad lines and closed pipes."""
import json
import subprocess
import sys

import pytest

from support import ROOT

pytestmark = pytest.mark.lean

KONER = [sys.executable, "-m", "koner.cli"]


def run(args, stdin=None):
    return subprocess.run(KONER + args, input=stdin, capture_output=True, text=True, timeout=120)


def test_text_argument_prints_jsonl():
    out = run(["ner", "아이유 노래 검색해줘."])
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["text"] == "아이유 노래 검색해줘."
    assert {"entity_group": "PS", "word": "아이유", "start": 0, "end": 3}.items() <= rec["entities"][0].items()


def test_table_format():
    out = run(["ner", "아이유 노래 검색해줘.", "--format", "table"])
    assert "PS" in out.stdout and "0-3" in out.stdout and "아이유" in out.stdout


def test_stdin_lines():
    out = run(["ner"], stdin="서울역으로 안내해줘.\n\n아이유 노래 검색해줘.\n")
    recs = [json.loads(l) for l in out.stdout.splitlines()]
    assert [r["line"] for r in recs] == [1, 2, 3]
    assert recs[1]["entities"] == []
    assert recs[2]["entities"][0]["word"] == "아이유"


def test_jsonl_with_bad_lines_answers_the_good_ones_in_order():
    lines = [json.dumps({"id": 1, "text": "아이유 노래 검색해줘."}, ensure_ascii=False),
             "{broken json",
             json.dumps({"id": 3}),
             json.dumps({"id": 4, "text": 42}),
             json.dumps({"id": 5, "text": "서울역으로 안내해줘. " * 3000}, ensure_ascii=False),
             json.dumps({"id": 6, "text": "에어컨 온도 3도 올려줘."}, ensure_ascii=False)]
    out = run(["ner", "--jsonl"], stdin="\n".join(lines) + "\n")
    assert out.returncode == 1
    assert [json.loads(l)["id"] for l in out.stdout.splitlines()] == [1, 5, 6]
    assert len(json.loads(out.stdout.splitlines()[1])["entities"]) >= 3000
    for n, why in ((2, "not valid JSON"), (3, "no 'text' field"), (4, "'text' is int")):
        assert f"stdin line {n}: {why}" in out.stderr
    assert "3 input line(s) failed" in out.stderr


def test_closed_pipe_ends_quietly():
    cmd = " ".join(KONER) + " ner | head -1"
    text = "아이유 노래 검색해줘.\n" * 500
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], input=text, capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 1
    assert "Traceback" not in out.stderr and "Broken" not in out.stderr


def test_missing_model_folder_is_one_line_error(tmp_path):
    out = run(["ner", "서울", "--model", str(tmp_path / "nope")])
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "no such model folder" in out.stderr


def test_invalid_utf8_on_stdin_is_answered_not_fatal():
    data = "아이유 노래 검색해줘.\n".encode() + b"\xff\xfe broken \xc3\n" + "서울역으로 안내해줘.\n".encode()
    out = subprocess.run(KONER + ["ner"], input=data, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    recs = [json.loads(l) for l in out.stdout.decode("utf-8").splitlines()]
    assert [r["line"] for r in recs] == [1, 2, 3]
    assert recs[1]["text"] == "\udcff\udcfe broken \udcc3"  # the bytes survive as escapes
    assert recs[2]["entities"][0]["word"] == "서울역"


def test_a_byte_order_mark_before_jsonl_keeps_the_first_record(tmp_path):
    # editors on Windows start UTF-8 files with a BOM; it is not JSON, and line 1 must not be lost to it
    rows = [{"id": 1, "text": "아이유 노래 검색해줘."}, {"id": 2, "text": "서울역으로 안내해줘."}]
    data = "\ufeff" + "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows)
    src = tmp_path / "rows.jsonl"
    src.write_text(data, "utf-8", newline="")
    for out in (run(["ner", "--jsonl", "--input", str(src)]), run(["ner", "--jsonl"], stdin=data)):
        assert out.returncode == 0, out.stderr
        recs = [json.loads(l) for l in out.stdout.splitlines()]
        assert [r["id"] for r in recs] == [1, 2]
        assert recs[0]["entities"][0]["word"] == "아이유" and recs[1]["entities"][0]["word"] == "서울역"
    dst = tmp_path / "out.jsonl"
    done = subprocess.run(KONER + ["ner-dataset", str(src), str(dst)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    recs = [json.loads(l) for l in dst.read_text("utf-8").splitlines()]
    assert [r["id"] for r in recs] == [1, 2] and recs[0]["entities"][0]["text"] == "아이유"


def test_a_byte_order_mark_before_plain_text_is_kept_as_text():
    out = run(["ner"], stdin="\ufeff아이유 노래 검색해줘.\n서울역으로 안내해줘.\n")
    recs = [json.loads(l) for l in out.stdout.splitlines()]
    assert [r["line"] for r in recs] == [1, 2]
    assert recs[0]["text"] == "\ufeff아이유 노래 검색해줘."  # offsets index the line as read
    assert (recs[0]["entities"][0]["word"], recs[0]["entities"][0]["start"]) == ("아이유", 1)


def test_a_closed_stdin_is_one_line_not_a_traceback():
    out = subprocess.run(["bash", "-c", " ".join(KONER) + " ner <&-"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 2 and out.stderr == "koner: standard input is closed; give a text or --input FILE\n"


def test_thread_and_worker_counts_beyond_any_server_are_one_line_errors():
    """`--threads 100000` once took 8 GB before doing anything; counts beyond 256 are refused up front."""
    import pytest

    from koner import NER

    for args in (["ner", "--threads", "100000", "부산"], ["ner", "--workers", str(10 ** 23), "부산"],
                 ["ner", "--threads", str(2 ** 31), "부산"], ["mask", "--workers", "257", "부산"],
                 ["serve", "--workers", "100000000000"], ["ner-dataset", "a.jsonl", "b.jsonl", "--workers", "300"]):
        out = run(args)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (args, out.stderr)
        assert "an integer from 1 to 256" in out.stderr.strip().splitlines()[-1], (args, out.stderr)
    for kw in ({"threads": 100_000}, {"workers": 10 ** 6}):
        with pytest.raises(ValueError, match="at most 256"):
            NER.load(**kw)
    assert len(NER.load(workers=256, threads=1)(["부산"][0])) >= 0  # the bound itself is allowed
