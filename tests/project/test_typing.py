"""The public API is typed: a user's script type-checks under `mypy --strict` (koner ships py.typed)."""
import os
import subprocess
import sys
import textwrap

import pytest

from support import ROOT
from support.extras import needs

pytestmark = pytest.mark.lean

needs("mypy")

USER = textwrap.dedent("""
    from koner import NER, Entity, KonerError, WorkerError

    ner: NER = NER.load(workers=1, aggregation="first")
    ents: list[Entity] = ner("아이유 노래 검색해줘.", labels="PS")
    first: Entity = ents[0]
    where: tuple[str, int, int, float] = (first.label, first.start, first.end, first.score)
    record: dict[str, object] = dict(first.to_dict(extended=True))
    for found in ner.pipe(iter(["서울역으로 안내해줘.", "부산"]), batch_size=8, workers=2):
        count: int = len(found)
    many: list[list[Entity]] = ner.batch(["부산 날씨 알려줘."])
    masked: str = ner.mask("어제 김민수 씨를 만났다.", labels="PS", style="char").text
    page: str = ner.render("아이유 노래 검색해줘.").html
    from koner.check import CheckReport, check_model

    report: CheckReport = check_model(None, tie_margin=0.1)
    verdict: int = report.exit_code
    shown: list[str] = report.lines() + report.damaged
    try:
        NER.load("/nope")
    except WorkerError as exc:
        position: int = exc.index
    except KonerError as exc:
        message: str = str(exc)
""")


def _mypy(tmp_path, source):
    (tmp_path / "user.py").write_text(source, "utf-8")
    # koner's own modules are read for their types but not reported on, as for any installed typed package
    env = {**os.environ, "MYPYPATH": str(ROOT / "runtime")}
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
                           "user.py"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)


def test_a_users_script_type_checks_strictly(tmp_path):
    assert (ROOT / "runtime" / "koner" / "py.typed").is_file()
    out = _mypy(tmp_path, USER)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_misuse_is_caught(tmp_path):
    out = _mypy(tmp_path, 'from koner import NER\nn: int = NER.load()("서울")\nNER.load(workers="two")\n')
    assert out.returncode == 1
    assert 'Incompatible types in assignment (expression has type "list[Entity]"' in out.stdout
    assert 'Argument "workers" to "load" of "NER" has incompatible type "str"' in out.stdout
