"""`koner ner` streaming: workers, output in order as it is ready, progress on a terminal, files, bad flags."""
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.lean


KONER = [sys.executable, "-m", "koner.cli"]
LINES = ["아이유 노래 검색해줘.", "서울역으로 안내해줘.", "", "에어컨 온도 3도 올려줘.", "부산 날씨 알려줘."]


def run(args, stdin=None, **kw):
    return subprocess.run(KONER + args, input=stdin, capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.parametrize("flag,value", [("--batch-size", "0"), ("--threads", "-1"), ("--workers", "0"),
                                        ("--workers", "two")])
def test_bad_values_get_one_line_and_exit_2(flag, value):
    out = run(["ner", flag, value, "서울"])
    assert out.returncode == 2
    assert out.stderr.startswith("koner: ") and out.stderr.count("\n") == 1 and flag in out.stderr
    assert "Traceback" not in out.stderr


def test_workers_keep_input_order_and_equal_one_worker():
    text = "\n".join(LINES * 40 + ["서울역으로 안내해줘. " * 300] + LINES * 40) + "\n"
    one = run(["ner", "--workers", "1"], stdin=text)
    two = run(["ner", "--workers", "2", "--batch-size", "3"], stdin=text)
    assert one.returncode == two.returncode == 0, two.stderr
    assert one.stdout == two.stdout
    recs = [json.loads(l) for l in two.stdout.splitlines()]
    assert [r["line"] for r in recs] == list(range(1, len(LINES) * 80 + 2))
    assert sum(e["word"] == "서울역" for e in recs[200]["entities"]) == 300


def test_first_results_appear_before_the_input_ends():
    proc = subprocess.Popen(KONER + ["ner", "--workers", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        proc.stdin.write("\n".join(LINES * 20) + "\n")  # 100 lines, and the input stays open
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no output while the input was still open"
        first = json.loads(proc.stdout.readline())
        assert first["line"] == 1 and first["entities"][0]["word"] == "아이유"
        assert proc.poll() is None  # still running: stdin is not closed yet
        proc.stdin.close()
        guard = threading.Timer(120, proc.kill)  # a bounded read: a hung process is killed, and the test fails
        guard.start()
        try:
            # the same reader as the first line: lines it already buffered are kept (communicate() would skip them)
            rest = proc.stdout.read()
        finally:
            guard.cancel()
        assert proc.wait(timeout=10) == 0
        assert len(rest.splitlines()) == 99
    finally:
        proc.kill()


def _with_tty_stderr(args, stdin):
    master, slave = pty.openpty()
    proc = subprocess.Popen(KONER + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out, _ = proc.communicate(stdin.encode(), timeout=120)
    err = b""
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    return proc.returncode, out.decode(), err.decode()


def test_progress_line_only_on_a_terminal():
    text = "\n".join(LINES * 30) + "\n"
    code, out, err = _with_tty_stderr(["ner"], text)
    assert code == 0 and len(out.splitlines()) == 150
    assert "150 texts" in err and "texts/s" in err and "entities" in err
    piped = run(["ner"], stdin=text)
    assert piped.returncode == 0 and piped.stderr == ""


def test_no_text_leaves_the_input_out(tmp_path):
    out = run(["ner", "--no-text"], stdin="아이유 노래 검색해줘.\n")
    rec = json.loads(out.stdout)
    assert "text" not in rec and rec["line"] == 1 and rec["entities"][0]["word"] == "아이유"


def test_input_and_output_files(tmp_path):
    src, dst = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_text("\n".join(LINES) + "\n", "utf-8")
    out = run(["ner", "--input", str(src), "--output", str(dst)])
    assert out.returncode == 0 and out.stdout == ""
    assert dst.read_text("utf-8") == run(["ner"], stdin="\n".join(LINES) + "\n").stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]  # no temporary left
    missing = run(["ner", "--input", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "o2.jsonl")])
    assert missing.returncode == 2 and "nope.txt" in missing.stderr and not (tmp_path / "o2.jsonl").exists()


def test_a_killed_run_leaves_no_file_under_the_final_name(tmp_path):
    src, dst = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_text("\n".join(LINES * 20_000) + "\n", "utf-8")
    proc = subprocess.Popen(KONER + ["ner", "--input", str(src), "--output", str(dst)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not any(p.name.endswith(".part") and p.stat().st_size > 0
                                                 for p in tmp_path.iterdir()):
            time.sleep(0.05)
        assert any(p.name.endswith(".part") for p in tmp_path.iterdir()), "no partial output appeared"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert not dst.exists()


def test_a_long_line_is_answered_whole_among_short_ones():
    from koner import NER

    long_text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 1500  # > 32,768 characters
    lines = ["부산 날씨 알려줘.", long_text, "아이유 노래 검색해줘."]
    out = run(["ner", "--workers", "2", "--no-text"], stdin="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    recs = [json.loads(l) for l in out.stdout.splitlines()]
    assert [r["line"] for r in recs] == [1, 2, 3]
    ner = NER.load()
    assert recs[1]["entities"] == json.loads(json.dumps([e.to_dict(extended=True) for e in ner(long_text)]))
    assert recs[2]["entities"][0]["word"] == "아이유"


def test_a_file_and_stdin_split_lines_alike_at_newlines_only(tmp_path):
    # a bare CR is text (old Mac line ends, a stray \r in a field); \r\n is a line end like \n: masked output
    # keeps one line per input line, so it lines up with side files, whether the input is a file or stdin
    data = ("어제 김민수 씨를 만났다.\r아이유 노래 검색해줘.\n"
            "서울역으로 안내해줘.\r\n"
            "부산 날씨 알려줘.\n").encode("utf-8")
    src = tmp_path / "in.txt"
    src.write_bytes(data)
    for verb in (["mask", "--labels", "PS"], ["ner", "--no-text"]):
        from_file = subprocess.run(KONER + verb + ["--input", str(src)], capture_output=True, timeout=300)
        from_stdin = subprocess.run(KONER + verb, input=data, capture_output=True, timeout=300)
        assert from_file.returncode == from_stdin.returncode == 0, from_file.stderr
        assert from_file.stdout == from_stdin.stdout
        assert from_file.stdout.count(b"\n") == 3, from_file.stdout
    masked = subprocess.run(KONER + ["mask", "--labels", "PS"], input=data, capture_output=True,
                            timeout=300).stdout.decode("utf-8").split("\n")
    assert masked == ["어제 [PS] 씨를 만났다.\r[PS] 노래 검색해줘.", "서울역으로 안내해줘.", "부산 날씨 알려줘.", ""]
    recs = [json.loads(l) for l in run(["ner", "--input", str(src)]).stdout.splitlines()]
    assert [r["text"] for r in recs] == ["어제 김민수 씨를 만났다.\r아이유 노래 검색해줘.", "서울역으로 안내해줘.",
                                         "부산 날씨 알려줘."]
