"""Graph rewrites that were measured and not chosen (benchmarks/graph_candidates.py compares them with the ones
`koner export` applies, in koner_export.rewrite): each takes an `onnx.ModelProto`, changes it in place and returns
how many places it changed.

- `matmul_nbits`: weight MatMuls as MatMulNBits (8-bit blocks, int8 compute with per-row, per-block
  activation scales): batch-invariant, one node per MatMul.
- `fast_gelu`: Gelu / BiasGelu (erf) as FastGelu (the tanh approximation, bias fused).
"""
from __future__ import annotations

from typing import Iterable, Optional

from koner_export.rewrite import MS_DOMAIN, _consumers, rewrite_each


def _ms_opset(model) -> None:
    from onnx import helper

    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))


def matmul_nbits(model, skip: Iterable[str] = (), *, block_size: int = 32, accuracy_level: int = 4) -> int:
    """Rewrite each float MatMul with a 2-D weight initializer (but `skip`) as an 8-bit MatMulNBits; returns the count.

    Weights: symmetric 8-bit blocks of `block_size` along K (scale max|block| / 127, the default zero point
    128); `accuracy_level` 4 computes in int8 with activations quantized per row and block at run time.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    skip = set(skip)
    inits = {i.name: i for i in graph.initializer}
    users = _consumers(graph)
    dropped = []

    def rule(node) -> Optional[list]:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if (w is None or node.name in skip or len(w.dims) != 2 or w.data_type != TensorProto.FLOAT
                or w.dims[0] % block_size):
            return None
        arr = numpy_helper.to_array(w).astype(np.float32)
        k, n = arr.shape
        blocks = arr.T.reshape(n, k // block_size, block_size)
        peak = np.abs(blocks).max(axis=2)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = (np.clip(np.round(blocks / scale[:, :, None]), -127, 127) + 128).astype(np.uint8)
        base = node.name or node.output[0]
        graph.initializer.extend([numpy_helper.from_array(q, base + "_nbits_B"),
                                  numpy_helper.from_array(scale.reshape(-1), base + "_nbits_scales")])
        if len(users.get(w.name, [])) == 1:
            dropped.append(w)
        return [helper.make_node("MatMulNBits", [node.input[0], base + "_nbits_B", base + "_nbits_scales"],
                                 list(node.output), name=base + "_nbits", domain=MS_DOMAIN, K=k, N=n, bits=8,
                                 block_size=block_size, accuracy_level=accuracy_level)]

    changed = rewrite_each(graph, rule)
    if changed:
        for w in dropped:
            graph.initializer.remove(w)
        _ms_opset(model)
    return changed


def fast_gelu(model) -> int:
    """Rewrite Gelu / BiasGelu (erf) as FastGelu (the tanh approximation, bias fused); returns the nodes rewritten."""
    from onnx import helper

    def rule(node) -> Optional[list]:
        if node.op_type not in ("Gelu", "BiasGelu") or node.domain != MS_DOMAIN:
            return None
        return [helper.make_node("FastGelu", list(node.input), list(node.output),
                                 name=(node.name or node.output[0]) + "/fast", domain=MS_DOMAIN)]

    return rewrite_each(model.graph, rule)
