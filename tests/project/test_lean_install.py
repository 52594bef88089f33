"""The lean tests (`-m lean`) pass with the base install and the test tools only, as `pip install '.[test]'` has
them: torch, transformers, the rest of the export stack and the other extras blocked."""
import json
import re
import subprocess
import sys
import textwrap

import pytest

from support import ROOT
from support.extras import has, reason

# the export stack: a lean test may skip for what this machine lacks, never for one of these
HEAVY = ("torch", "transformers", "optimum", "onnx", "koner_export", "safetensors", "huggingface_hub")
# the other extras, blocked as well: a lean test that needs one skips, naming it (support.extras.needs)
EXTRAS = ("uvicorn", "starlette", "prometheus_client", "httptools", "uvloop", "pyarrow", "pandas", "ray", "pyspark",
          "spacy", "mkdocs", "mkdocstrings", "matplotlib")

# a pytest plugin for the run below: every skip, with its test or module and its reason, to a JSON file
SKIPS = """
import json, os

skips = []


def _reason(report):
    return report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)


def pytest_collectreport(report):
    if report.skipped:
        skips.append({"module": report.nodeid, "reason": _reason(report)})


def pytest_runtest_logreport(report):
    if report.skipped:
        skips.append({"test": report.nodeid, "reason": _reason(report)})


def pytest_sessionfinish(session):
    with open(os.environ["LEAN_SKIPS"], "w", encoding="utf-8") as f:
        json.dump(skips, f)
"""


def _names_the_export_stack(reason: str) -> bool:
    return "koner[export]" in reason or any(re.search(rf"\b{name}\b", reason) for name in HEAVY)


def test_lean_tests_pass_without_the_export_stack(tmp_path):
    if not has("torch"):  # this whole run has no export stack: it is itself the lean run, with every test
        pytest.skip(f"{reason('torch')}: without the export stack this run is itself the lean run")
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {HEAVY + EXTRAS!r}:
                    raise ModuleNotFoundError('blocked in the lean test run: ' + name, name=name)
        sys.meta_path.insert(0, Block())
    """))
    (tmp_path / "lean_skips.py").write_text(SKIPS)
    # no plugin autoload: a lean install has only pytest's own plugins
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT / 'runtime'}", "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "LEAN_SKIPS": str(tmp_path / "skips.json")}
    # the tests marked lean, selected by their marker: no hand-kept list of files to fall behind
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "lean_skips",
                          "-m", "lean", str(ROOT / "tests")],
                         capture_output=True, text=True, timeout=3600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    passed = re.search(r"(\d+) passed", out.stdout)
    assert passed and int(passed.group(1)) >= 250, out.stdout[-3000:]
    skips = json.loads((tmp_path / "skips.json").read_text("utf-8"))
    # a lean test may skip for what this machine lacks (qemu, a CPU the dependencies' wheels refuse) or for an extra
    # it names, never for the export stack
    assert not [s for s in skips if "test" in s and _names_the_export_stack(s["reason"])], skips
    # a module that skipped whole needs an extra: no lean module may need the export stack
    lean_modules = [s for s in skips if "module" in s and "pytest.mark.lean" in (ROOT / s["module"]).read_text("utf-8")]
    assert not [s for s in lean_modules if _names_the_export_stack(s["reason"])], lean_modules
