"""The lean tests run with the base install and pytest only: torch, transformers and the export extra blocked."""
import subprocess
import sys
import textwrap

from support import ROOT

HEAVY = ("torch", "transformers", "optimum", "onnx", "koner_export", "hypothesis", "safetensors", "huggingface_hub")


def test_lean_tests_pass_without_the_export_stack(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {HEAVY!r}:
                    raise ImportError('blocked in the lean test run: ' + name)
        sys.meta_path.insert(0, Block())
    """))
    # no plugin autoload: a lean install has no hypothesis plugin to load
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT / 'runtime'}", "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    # every lean test file (test_lean_*.py), this one aside: no hand-kept list to fall behind
    lean = [str(p) for p in sorted((ROOT / "tests").glob("test_lean_*.py")) if p.name != "test_lean_install.py"]
    assert len(lean) >= 9
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *lean],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout
    # a test may skip for what this machine lacks (qemu, a CPU the dependencies' wheels refuse), never for the
    # export stack: every skip reason is printed (-rs) and none names it
    skips = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED")]
    assert not [line for line in skips if any(name in line for name in HEAVY)], skips
