"""Other x86-64 CPUs under qemu user-mode, and whether this venv's interpreter and the runtime's dependencies
(numpy, onnxruntime, tokenizers) start on each: their wheels, not koner, decide which CPUs can run at all, so a
test that needs them on an emulated CPU skips, naming the dependency, where they cannot start."""
from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

QEMU = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
CPU_MODULE = Path(__file__).resolve().parents[2] / "runtime" / "koner" / "cpu.py"
DEPENDENCIES = ("numpy", "onnxruntime", "tokenizers")

needs_qemu = pytest.mark.skipif(not QEMU or platform.machine() != "x86_64",
                                reason="needs qemu user-mode for x86-64 (apt-get install qemu-user-static)")


def run(model: str, code: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """`python -c code` with this venv's interpreter on the emulated CPU `model`."""
    return subprocess.run([QEMU, "-cpu", model, sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


@lru_cache(maxsize=None)
def cannot_start(model: str) -> "str | None":
    """Why this venv's interpreter or one of the runtime's dependencies cannot start on `model`; None if all do."""
    if run(model, "pass", timeout=120).returncode != 0:
        return f"this Python interpreter does not start on an emulated {model}"
    for name in DEPENDENCIES:
        out = run(model, f"import {name}", timeout=300)
        if out.returncode != 0:
            return f"the installed {name} {_version(name)} does not start on an emulated {model} ({_why(out)})"
    return None


def skip_unless_dependencies_start(model: str) -> None:
    """Skip the calling test, saying why, when the runtime's dependencies cannot start on `model`."""
    reason = cannot_start(model)
    if reason:
        pytest.skip(reason)


def _why(out: subprocess.CompletedProcess) -> str:
    if out.returncode in (-4, 132):
        return "illegal instruction"
    lines = [line.strip() for line in out.stderr.splitlines() if line.strip() and "warning:" not in line]
    errors = [line for line in lines if "Error" in line]
    return ((errors or lines or [f"exit {out.returncode}"])[-1])[:200]


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "(not installed)"
