"""Every command that writes: arguments checked before work, documented exit codes, no traceback, files with
the umask's mode, and nothing left behind by SIGTERM or Ctrl-C."""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import ROOT
from support.extras import needs

pytestmark = pytest.mark.lean

KONER = [sys.executable, "-m", "koner.cli"]
LINES = ["아이유 노래 검색해줘.", "서울역으로 안내해줘.", "", "에어컨 온도 3도 올려줘.", "부산 날씨 알려줘."]


def run(args, stdin=None, umask=None, **kw):
    pre = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run(KONER + args, input=stdin, capture_output=True, text=True, timeout=300, preexec_fn=pre,
                          **kw)


def one_line_error(res, code=2):
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("koner: "), res.stderr
    return lines[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_output_that_is_a_folder_is_refused_before_any_work(tmp_path):
    # the output is checked before the model loads: a missing model would be the error otherwise
    line = one_line_error(run(["ner", "--output", str(tmp_path), "--model", str(tmp_path / "nope"), "서울"]))
    assert "is a folder" in line and "--output" in line
    line = one_line_error(run(["ner", "--output", str(tmp_path / "no" / "o.jsonl"), "서울"]))
    assert "no such folder" in line
    line = one_line_error(run(["ner", "--input", str(tmp_path / "nope.txt"), "--model", str(tmp_path / "x")]))
    assert "nope.txt" in line  # the input too
    assert sorted(tmp_path.iterdir()) == []


def test_a_closed_stdout_after_a_text_argument_is_quiet():
    res = subprocess.run(["bash", "-c", " ".join(KONER) + " ner '서울역으로 안내해줘.' | true"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0 and res.stderr == "", res.stderr


@pytest.mark.parametrize("umask,file_mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_outputs_get_the_mode_the_umask_gives(tmp_path, umask, file_mode):
    needs("pyarrow")  # d.parquet below
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n", "utf-8")
    assert run(["ner", "--input", str(src), "--output", str(tmp_path / "o.jsonl")], umask=umask).returncode == 0
    assert mode(tmp_path / "o.jsonl") == file_mode
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(LINES)),
                    "utf-8")
    for out in ("d.jsonl", "d.parquet"):
        assert run(["ner-dataset", str(rows), str(tmp_path / out)], umask=umask).returncode == 0
        assert mode(tmp_path / out) == file_mode, out
    code = ("import os, sys; from pathlib import Path; from koner import atomic; "
            "os.umask(int(sys.argv[2], 8)); p = atomic.temp_path(Path(sys.argv[1]), folder=True); "
            "print(oct(os.stat(p).st_mode & 0o777)); p.rmdir()")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "engine-out"), oct(umask)], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == oct(0o777 & ~umask)  # the folder Ray and Spark write their part files into


def _default_sigint() -> None:
    """In the child: Ctrl-C acts as in a terminal even when the suite runs in the background (SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_wait_for_part(args, folder: Path, **kw):
    proc = subprocess.Popen(KONER + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint, **kw)
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".part") for p in folder.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no temporary output appeared"
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("sig,code,word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_stopped_run_leaves_nothing_behind(tmp_path, sig, code, word):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES * 40_000) + "\n", "utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = _start_and_wait_for_part(["ner", "--input", str(src), "--output", str(tmp_path / "out.jsonl")], tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code and err.strip().splitlines()[-1] == f"koner: {word}", err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no final file, no .part


def test_sigterm_stops_ner_dataset_without_leftovers(tmp_path):
    needs("pyarrow")  # out.parquet
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps({"id": i, "text": LINES[i % 5]}, ensure_ascii=False)
                              for i in range(100_000)) + "\n", "utf-8")
    proc = _start_and_wait_for_part(["ner-dataset", str(rows), str(tmp_path / "out.parquet"), "--batch-size", "64"],
                                    tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]


def test_ctrl_c_on_an_open_stdin_exits_130():
    proc = subprocess.Popen(KONER + ["ner"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    try:
        proc.stdin.write("아이유 노래 검색해줘.\n" * 100)  # more than the workers read ahead; stdin stays open
        proc.stdin.flush()
        import select

        assert select.select([proc.stdout], [], [], 120)[0], "no answer to the first line"
        assert json.loads(proc.stdout.readline())["entities"][0]["word"] == "아이유"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        err = proc.stderr.read()
        assert err.strip() == "koner: interrupted" and "Traceback" not in err
    finally:
        proc.kill()


def test_serve_refuses_bad_arguments_with_exit_2(tmp_path):
    needs("uvicorn")  # without the serve extra, `koner serve` refuses for that first
    assert "0 to 65535" in one_line_error(run(["serve", "--port", "70000"]))
    assert "cannot read the API key" in one_line_error(run(["serve", "--api-key-file", str(tmp_path / "nope")]))
    (tmp_path / "empty").write_text("")
    assert "empty" in one_line_error(run(["serve", "--api-key-file", str(tmp_path / "empty")]))
    assert "no such model folder" in one_line_error(run(["serve", "--model", str(tmp_path / "nope")]))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(run(["serve", "--port", str(port)]))
        assert f"cannot listen on 127.0.0.1:{port}" in line


def test_deeply_nested_and_huge_json_lines_are_reported_not_fatal(tmp_path):
    lines = ["[" * 100_000, '{"text": 1' + "1" * 5000 + "}", json.dumps({"id": 3, "text": "아이유 노래 검색해줘."},
                                                                         ensure_ascii=False)]
    res = run(["ner", "--jsonl"], stdin="\n".join(lines) + "\n")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "line 1: not valid JSON koner reads (nested too deeply)" in res.stderr and "line 2: not valid JSON" in res.stderr
    assert [json.loads(x)["id"] for x in res.stdout.splitlines()] == [3]
    (tmp_path / "deep.jsonl").write_text('{"text": "서울", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n", "utf-8")
    line = one_line_error(run(["ner-dataset", str(tmp_path / "deep.jsonl"), str(tmp_path / "o.jsonl")]))
    assert "deep.jsonl line 1: not valid JSON koner reads (nested too deeply); nothing was written" in line


def test_a_fifo_or_dev_stdout_as_output_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    res = run(["ner", "--output", str(fifo), "아이유 노래 검색해줘."])
    got, _ = reader.communicate(timeout=60)
    assert res.returncode == 0 and json.loads(got)["entities"][0]["word"] == "아이유"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a FIFO, not replaced by a file
    res = run(["ner", "--output", "/dev/stdout", "서울역으로 안내해줘."])  # a symlink to this process's pipe
    assert res.returncode == 0 and json.loads(res.stdout)["entities"][0]["word"] == "서울역"
    out = tmp_path / "out.jsonl"  # `--output /dev/stdout > out.jsonl`: a symlink to the file stdout is open on
    with open(out, "w") as f:
        res = subprocess.run(KONER + ["ner", "--output", "/dev/stdout", "서울역으로 안내해줘."], stdout=f,
                             stderr=subprocess.PIPE, text=True, timeout=120)
    assert res.returncode == 0 and json.loads(out.read_text("utf-8"))["entities"][0]["word"] == "서울역"


def test_a_planted_symlink_to_someone_elses_fifo_is_refused(tmp_path):
    """In a shared folder another user can plant `out.jsonl -> their FIFO` and read the entities as they are
    written; only /dev's links and this process's own descriptors are written through."""
    fifo = tmp_path / "their-fifo"
    os.mkfifo(fifo)
    planted = tmp_path / "out.jsonl"
    planted.symlink_to(fifo)
    res = run(["ner", "--output", str(planted), "김민수 씨는 서울대병원에 입원했다."])
    assert "is a symlink" in one_line_error(res)
    assert planted.is_symlink() and stat.S_ISFIFO(os.stat(fifo).st_mode)


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's data\n")
    os.chmod(victim, 0o600)
    return victim


@pytest.mark.parametrize("args", [
    ["ner", "--output", "{out}", "아이유 노래 검색해줘."],
    ["ner", "--format", "html", "--output", "{out}", "아이유 노래 검색해줘."],
    ["mask", "--output", "{out}", "아이유 노래 검색해줘."],
    ["ner-dataset", "{rows}", "{out}", "--overwrite"],
    ["ner-dataset", "{rows}", "{out}"],
])
def test_a_symlink_as_output_is_refused_and_what_it_points_to_kept(tmp_path, args):
    # in a shared folder (/tmp) another user can plant out.jsonl -> a file of yours: koner must not replace it
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": 1, "text": "아이유 노래 검색해줘."}, ensure_ascii=False) + "\n", "utf-8")
    victim = _victim(tmp_path)
    for link, target in ((tmp_path / "out.jsonl", victim), (tmp_path / "dangling.jsonl", tmp_path / "new.txt")):
        link.symlink_to(target)
        line = one_line_error(run([a.format(out=link, rows=rows) for a in args]))
        assert f"{link}: is a symlink" in line
        assert link.is_symlink() and os.readlink(link) == str(target)
    assert victim.read_text() == "someone else's data\n" and mode(victim) == 0o600
    assert not (tmp_path / "new.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_a_symlink_as_output_is_refused_by_the_python_api_too(tmp_path):
    from koner import atomic
    from koner.errors import OutputError

    victim = _victim(tmp_path)
    link = tmp_path / "out"
    link.symlink_to(victim)
    for folder in (False, True):
        with pytest.raises(OutputError, match="is a symlink"):
            with atomic.output_path(link, folder=folder) as tmp:
                tmp.write_text("new")
    assert victim.read_text() == "someone else's data\n" and link.is_symlink()


def _owned_by_another(path: Path, file_mode: int) -> None:
    path.write_text("old\n")
    os.chown(path, 4321, 4322)
    os.chmod(path, file_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
@pytest.mark.parametrize("args,name", [
    (["ner", "--input", "{src}", "--output", "{out}"], "o.jsonl"),
    (["ner", "--format", "html", "--input", "{src}", "--output", "{out}"], "o.html"),
    (["mask", "--input", "{src}", "--output", "{out}"], "o.txt"),
    (["ner-dataset", "{rows}", "{out}", "--overwrite"], "o.jsonl"),
    (["ner-dataset", "{rows}", "{out}", "--overwrite"], "o.parquet"),
])
def test_a_replaced_output_keeps_its_mode_and_owner(tmp_path, args, name):
    # as root in a sticky shared folder (/tmp): another user's private output stays theirs and private
    if name.endswith(".parquet"):
        needs("pyarrow")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    src, rows = tmp_path / "in.txt", tmp_path / "rows.jsonl"
    src.write_text("\n".join(LINES) + "\n", "utf-8")
    rows.write_text("\n".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(LINES)),
                    "utf-8")
    out = shared / name
    _owned_by_another(out, 0o600)
    assert run([a.format(src=src, rows=rows, out=out) for a in args], umask=0o022).returncode == 0
    st = out.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 4321, 4322)
    assert out.read_bytes() != b"old\n"
    assert sorted(p.name for p in shared.iterdir()) == [name]


def test_a_replaced_output_is_never_more_open_than_the_old_one_even_while_written(tmp_path):
    from koner import atomic

    final = tmp_path / "out.jsonl"
    final.write_text("old\n")
    os.chmod(final, 0o640)
    with atomic.output_text(final) as f:
        tmp = Path(f.name)
        assert mode(tmp) & 0o027 == 0  # no more for the group or others than the old file gives
        f.write("new\n")
    assert mode(final) == 0o640 and final.read_text() == "new\n"
    folder = tmp_path / "parts"
    folder.mkdir()
    os.chmod(folder, 0o700)
    with atomic.output_path(folder, folder=True) as tmp:
        assert mode(tmp) == 0o700
        (tmp / "part-0.jsonl").write_text("{}\n")
    assert mode(folder) == 0o700 and [p.name for p in folder.iterdir()] == ["part-0.jsonl"]
    if os.geteuid() == 0:
        os.chown(folder, 4321, 4322)
        with atomic.output_path(folder, folder=True) as tmp:
            pass
        assert (folder.stat().st_uid, folder.stat().st_gid) == (4321, 4322)


def test_an_unwritable_output_folder_or_a_full_disk_is_one_line(tmp_path):
    line = one_line_error(run(["ner", "--output", "/proc/koner-out.jsonl", "서울"]))
    assert "/proc: cannot write koner-out.jsonl there" in line
    # buffered as a user's shell has it, and unbuffered (PYTHONUNBUFFERED=1): the exit never fails a second time
    for unbuffered in ("", "1"):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | ({"PYTHONUNBUFFERED": "1"} if unbuffered else {})
        full = subprocess.run(["bash", "-c", " ".join(KONER) + " ner '아이유 노래 검색해줘.' > /dev/full"],
                              capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
        assert full.returncode == 2 and "Traceback" not in full.stderr, (unbuffered, full.stderr)
        assert full.stderr.strip() == "koner: No space left on device; outputs under a temporary name were removed"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for env in (buffered, buffered | {"PYTHONUNBUFFERED": "1"}):  # --help and --version: argparse's own printing
        for verb in ("--help", "--version", "ner --help"):
            helped = subprocess.run(["bash", "-c", " ".join(KONER) + f" {verb} > /dev/full"], capture_output=True,
                                    text=True, timeout=120, cwd=ROOT, env=env)
            assert helped.returncode == 2 and helped.stderr.startswith("koner: No space left on device"), \
                (verb, env.get("PYTHONUNBUFFERED"), helped.stderr)
    # started with standard output closed: help still exits 0, a usage error is still its one line and exit 2
    for verb, code in (("--help", 0), ("--version", 0), ("bogus", 2), ("ner --window 2 서울", 2)):
        closed = subprocess.run(["bash", "-c", " ".join(KONER) + f" {verb} >&-"], capture_output=True, text=True,
                                timeout=120, cwd=ROOT)
        assert closed.returncode == code and "Traceback" not in closed.stderr, (verb, closed.stderr)


def test_a_folder_output_replaced_under_an_interrupt_is_old_or_new_never_neither(tmp_path, monkeypatch):
    from koner import atomic

    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    real_rmtree = atomic.shutil.rmtree

    def interrupted(path, *a, **kw):  # Ctrl-C while the old folder is being removed
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with atomic.output_path(final, folder=True) as tmp:
            (tmp / "new.txt").write_text("new")
            monkeypatch.setattr(atomic.shutil, "rmtree", interrupted)
    monkeypatch.setattr(atomic.shutil, "rmtree", real_rmtree)
    assert (final / "new.txt").read_text() == "new"


def _fail_on(monkeypatch, text):
    """Every model loaded from now on fails (RuntimeError) on a call that holds only `text`."""
    import koner.ner as kn

    load = kn.NER.load

    def failing_load(*a, **kw):
        ner = load(*a, **kw)
        run_, bomb = ner.session.run, ner.tokenize(text).ids.tolist()

        def bad(ids, mask):
            if ids.shape[0] == 1 and ids[0].tolist() == bomb:
                raise RuntimeError("onnxruntime failed")
            return run_(ids, mask)

        ner.session.run = bad
        return ner

    monkeypatch.setattr(kn.NER, "load", failing_load)


def test_a_text_the_model_fails_on_is_skipped_with_its_line_number(tmp_path, monkeypatch, capsys):
    from koner.cli import main

    _fail_on(monkeypatch, "폭탄 문장")
    lines = ["아이유 노래 검색해줘.", "서울역으로 안내해줘. " * 3000, "부산 날씨 알려줘.", "폭탄 문장", "BTS 신곡 틀어줘."]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", "utf-8")
    assert main(["ner", "--input", str(tmp_path / "in.txt"), "--workers", "2", "--output", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "in.txt line 4: the model failed on it (RuntimeError: onnxruntime failed); line skipped" in err
    recs = [json.loads(x) for x in (tmp_path / "o").read_text("utf-8").splitlines()]
    assert [r["line"] for r in recs] == [1, 2, 3, 5]


def test_a_long_line_behind_a_failed_one_keeps_its_place(tmp_path, monkeypatch, capsys):
    """A failure stops the read-ahead just before a long text: the long text is still answered before the lines
    read after it."""
    from koner.cli import main

    _fail_on(monkeypatch, "폭탄 문장")
    lines = ["아이유 노래 검색해줘.", "폭탄 문장", "서울역으로 안내해줘. " * 3000, "부산 날씨 알려줘."]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", "utf-8")
    assert main(["ner", "--input", str(tmp_path / "in.txt"), "--workers", "2", "--output", str(tmp_path / "o")]) == 1
    assert "in.txt line 2: the model failed on it (RuntimeError: onnxruntime failed); line skipped" in capsys.readouterr().err
    recs = [json.loads(x) for x in (tmp_path / "o").read_text("utf-8").splitlines()]
    assert [r["line"] for r in recs] == [1, 3, 4]  # input order
    assert [e["word"] for e in recs[2]["entities"]] == ["부산"]


def test_verbose_says_how_the_model_runs():
    from koner.cpu import int8_path

    res = run(["ner", "--verbose", "--workers", "2", "아이유 노래 검색해줘."])
    assert res.returncode == 0 and json.loads(res.stdout)["entities"][0]["word"] == "아이유"
    line = res.stderr.strip()
    assert line.startswith("koner: model ") and "(int8, 31 IOB2 labels)" in line
    assert f"CPU int8 path {int8_path()}" in line and "2 worker(s) x 1 thread(s)" in line


@pytest.mark.parametrize("jsonl", [False, True], ids=["text", "jsonl"])
def test_a_line_over_ten_million_characters_is_skipped_and_the_others_answered(tmp_path, jsonl):
    """A line koner will not hold (input without newlines can be endless) is reported, never read whole."""
    huge = "가" * 10_000_001
    rows = ["서울역으로 안내해줘.", huge, "아이유 노래 검색해줘."]
    if jsonl:
        rows = [json.dumps({"id": k, "text": t}, ensure_ascii=False) for k, t in enumerate(rows)]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(rows) + "\n", "utf-8")
    res = run(["ner", "--input", str(src), "--no-text"] + (["--jsonl"] if jsonl else []))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert "line 2: the line has 10,000,0" in res.stderr and "over the limit of 10,000,000" in res.stderr
    got = [json.loads(line) for line in res.stdout.splitlines()]
    assert [g["entities"][0]["text"] for g in got] == ["서울역", "아이유"]
