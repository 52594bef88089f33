"""Offline graph optimization: onnxruntime's portable fusions written into the model file."""
from __future__ import annotations

from pathlib import Path

# "extended" fuses LayerNorm, GELU, MatMul+scale and the int8 MatMul chains into onnxruntime contrib ops for
# the CPU; "all" would add layout changes tied to one CPU's instruction set, so it stays a load-time step.
LEVEL = "extended"


def optimize(src: Path, out: Path) -> None:
    """Write `src` with onnxruntime's extended-level graph optimizations applied to `out`."""
    import onnxruntime as ort

    from koner.session import session_options

    so = session_options(1, LEVEL)
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
