"""Same labels on x86 CPUs without VNNI: the bundled model under `qemu-x86_64 -cpu EPYC-Rome` (AVX2, whose
u8*s8 kernels saturate 16-bit pair sums) gives the entities recorded for it, and a model exported without
koner's weight-pair limit warns on such a CPU (lean: base install)."""
import json
import warnings
from pathlib import Path

import pytest

import koner
from koner import NER, SaturationWarning

from support import GOLDEN_DIR
from support.emulation import needs_qemu, run, skip_unless_dependencies_start

pytestmark = pytest.mark.lean

GOLDEN = GOLDEN_DIR / "cpu-epyc-rome.json"
RUNTIME = Path(koner.__file__).resolve().parents[1]

# run under emulation: the entities of each text as [label, start, end, score]
PROGRAM = """
import json, sys, warnings
warnings.simplefilter("error")
from koner import NER
from koner.cpu import int8_path
texts = json.load(sys.stdin)
ner = NER.load(workers=1)
print(json.dumps({"int8_path": int8_path(),
                  "entities": [[[e.label, e.start, e.end, e.score] for e in ents] for ents in ner.batch(texts)]}))
"""


@needs_qemu
def test_an_avx2_cpu_without_vnni_gives_the_entities_recorded_for_it():
    skip_unless_dependencies_start("EPYC-Rome")
    golden = json.loads(GOLDEN.read_text("utf-8"))
    texts = [row["text"] for row in golden["texts"]]
    assert len(texts) == 30
    out = run("EPYC-Rome", PROGRAM, input=json.dumps(texts), cwd=RUNTIME)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    assert got["int8_path"] == "x86-u8s8-saturating"
    for row, ents in zip(golden["texts"], got["entities"]):
        assert [e[:3] for e in ents] == [e[:3] for e in row["entities"]], row["text"]
        assert [e[3] for e in ents] == pytest.approx([e[3] for e in row["entities"]], abs=1e-4), row["text"]


def test_the_recorded_entities_are_this_hosts_as_well(ner):
    """The emulated CPU's answers recorded in the fixture are the ones a VNNI or ARM64 machine gives."""
    golden = json.loads(GOLDEN.read_text("utf-8"))
    for row, ents in zip(golden["texts"], ner.batch([r["text"] for r in golden["texts"]])):
        assert [[e.label, e.start, e.end] for e in ents] == [e[:3] for e in row["entities"]], row["text"]
        assert [e.score for e in ents] == pytest.approx([e[3] for e in row["entities"]], abs=2e-3), row["text"]


def _unlimited_copy(model_copy: Path) -> Path:
    manifest = json.loads((model_copy / "koner.json").read_text("utf-8"))
    manifest["quantization"]["limit_pairs"] = False  # as written by `koner export --no-limit-pairs`
    (model_copy / "koner.json").write_text(json.dumps(manifest), "utf-8")
    return model_copy


def test_a_model_whose_weights_can_saturate_warns_on_a_cpu_that_saturates(model_copy, monkeypatch):
    from koner import cpu

    folder = _unlimited_copy(model_copy)
    monkeypatch.setattr(cpu, "saturates", lambda: True)
    with pytest.warns(SaturationWarning, match="koner export"):
        NER.load(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NER.load()  # the bundled model's weights are limited: no warning


def test_no_warning_where_the_cpu_cannot_saturate(model_copy, monkeypatch):
    from koner import cpu

    folder = _unlimited_copy(model_copy)
    monkeypatch.setattr(cpu, "saturates", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NER.load(folder)
