"""What a run happened on: library versions and the machine, for manifests and benchmark results."""
from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path

EXPORT_LIBRARIES = ("koner", "torch", "transformers", "onnx", "onnxruntime", "tokenizers", "numpy")


def versions(modules: tuple[str, ...] = EXPORT_LIBRARIES) -> dict:
    """`{module: version}` in the order given; None for a module that cannot be imported."""
    out = {}
    for name in modules:
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # not installed, or broken: the record says so instead of failing the run
            out[name] = None
    return out


def machine() -> dict:
    """Python, platform, CPU count, CPU model and the SIMD flags that matter to int8 kernels."""
    from koner.cpu import int8_path

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "int8_path": int8_path()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(l.split(":", 1)[1].strip() for l in cpuinfo.splitlines() if l.startswith("model name"))
        flags = next(l.split(":", 1)[1].split() for l in cpuinfo.splitlines() if l.startswith("flags"))
        info["flags"] = sorted(f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx512bw",
                                                          "avx_vnni", "amx_int8", "fma"))
    except (OSError, StopIteration):
        pass
    return info
