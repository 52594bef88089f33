"""int8 weights whose products cannot saturate on x86 CPUs without VNNI, so every x86 CPU gives the same sums.

onnxruntime's u8×s8 kernels for AVX2 and for AVX-512 without VNNI multiply uint8 activations by int8
weights with `vpmaddubsw`, which adds each pair of neighbouring products along the inner dimension in a
signed 16-bit lane and saturates at ±32,767. With activations up to 255, a pair can reach that only when
both weights have the same sign and |w_k| + |w_k+1| > 128 (255 × 128 = 32,640 fits). VNNI CPUs and ARM64
sum in 32 bits and never saturate, so outside such pairs all CPUs compute the same integers.

`limit_pairs` moves each such pair to |w_k| + |w_k+1| = 128, taking the excess half from each weight (the
least squared change). On the stand-in 2,697 of 4.7 million pairs (0.06%) needed it. Weights must be
int8 with the inner dimension first ([K, N], as onnxruntime's quantizer writes MatMul and QAttention
weights); uint8 weights (`u8u8`) and `reduce_range` (7-bit) weights cannot saturate and are left alone.
"""
from __future__ import annotations

import numpy as np

LIMIT = 128  # |w_k| + |w_k+1| <= LIMIT: 255 * LIMIT <= 32767
WEIGHT_INPUT = {"DynamicQuantizeMatMul": 1, "MatMulInteger": 1, "MatMulIntegerToFloat": 1, "QAttention": 1}


def risky_pairs(w: np.ndarray) -> np.ndarray:
    """Mask [K // 2, N] of the neighbouring-row pairs of int8 weights `w` [K, N] that can saturate."""
    w = w.astype(np.int32)
    k = w.shape[0] - w.shape[0] % 2
    a, b = w[0:k:2], w[1:k:2]
    return (np.sign(a) == np.sign(b)) & (np.abs(a) + np.abs(b) > LIMIT)


def limit(w: np.ndarray) -> tuple[np.ndarray, int]:
    """`w` [K, N] int8 with every risky pair brought to |w_k| + |w_k+1| = 128; returns it and the pairs changed."""
    risky = risky_pairs(w)
    count = int(risky.sum())
    if not count:
        return w, 0
    out = w.astype(np.int32)
    k = out.shape[0] - out.shape[0] % 2
    a, b = out[0:k:2], out[1:k:2]
    excess = np.abs(a) + np.abs(b) - LIMIT  # <= min(|a|, |b|): neither weight changes sign
    sign = np.sign(a)
    out[0:k:2] = np.where(risky, a - sign * ((excess + 1) // 2), a)
    out[1:k:2] = np.where(risky, b - sign * (excess // 2), b)
    return out.astype(np.int8), count


def limit_pairs(model) -> int:
    """Limit the risky pairs of every int8 weight initializer of `model` (an onnx ModelProto) in place; returns the pairs changed."""
    from onnx import TensorProto, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    done: set[str] = set()
    changed = 0
    for node in model.graph.node:
        slot = WEIGHT_INPUT.get(node.op_type)
        if slot is None or len(node.input) <= slot:
            continue
        name = node.input[slot]
        tensor = inits.get(name)
        if tensor is None or name in done or tensor.data_type != TensorProto.INT8 or len(tensor.dims) != 2:
            continue
        done.add(name)
        w, count = limit(numpy_helper.to_array(tensor))
        if count:
            tensor.CopyFrom(numpy_helper.from_array(w, name))
            changed += count
    return changed
