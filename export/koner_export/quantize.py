"""fp32 ONNX -> dynamic int8 ONNX with onnxruntime.quantization."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Optional

from .rewrite import rewrite_each


@dataclass
class QuantOptions:
    """Dynamic quantization settings; the defaults give signed int8 weights, embeddings included."""

    per_channel: bool = False
    reduce_range: bool = False
    u8u8: bool = False  # uint8 weights: for AVX2/AVX-512 CPUs without VNNI, where u8*s8 can saturate
    op_types: list[str] = field(default_factory=lambda: ["MatMul", "Gather"])
    exclude: list[str] = field(default_factory=list)  # node names kept in float
    float_head: bool = True  # keep the classifier in float (~24 KB)
    float_projection: bool = True  # keep the embedding projection (ELECTRA's embeddings_project) in float (~128 KB)
    embeddings: str = "fp16"  # embedding tables: "fp16", or "int8" (one fp16 scale per row, 4.5 MB smaller)
    graph: str = "fused"  # "fused" (attention fused, measured fastest) or "onnxruntime" (its fusions only): graph.py
    activations: str = "per-tensor"  # or "per-token": one scale per token, batch invariant (graph.py)
    # int8 weight pairs that could saturate u8*s8 sums on x86 without VNNI brought within range (saturation.py)
    limit_pairs: bool = True

    @property
    def pairs_can_saturate(self) -> bool:
        """Whether the weights are int8 with all 8 bits, so `limit_pairs` has something to do."""
        return not (self.u8u8 or self.reduce_range)

    def to_json(self) -> dict:
        """The options as written into the manifest."""
        d = asdict(self)
        d["weight_type"] = "uint8" if self.u8u8 else "int8"
        return d


def preprocess(fp32: Path, out: Path) -> None:
    """Constant folding and shape inference before quantization: a smaller graph, same arithmetic."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)


def quantize(fp32: Path, out: Path, opts: QuantOptions, *, preprocessed: bool = False) -> None:
    """Write the dynamically quantized model of `fp32` to `out` (`preprocessed`: `preprocess` already ran)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = fp32
        if not preprocessed:
            src = Path(tmp) / "pre.onnx"
            preprocess(fp32, src)
        _quantize(src, out, opts)


# The classifier: int8 rounding there moves every logit directly, while keeping it in float costs
# about 24 KB and no measurable time.
HEAD_SUFFIXES = ("classifier/MatMul",)
# ELECTRA's projection from the embedding width to the hidden width: its output is the residual stream
# every layer adds to, so its rounding error reaches all of them. On the stand-in's parity corpus,
# int8 rounding of it alone changed token labels in 17 of 585 texts, of any three encoder layers together
# 2 to 8; in float it costs 128 KB.
PROJECTION_SUFFIXES = ("embeddings_project/MatMul",)


def layer_group(node: str) -> str:
    """The encoder layer a node (or tensor) name belongs to (`layer.03`), or the name itself outside the layers."""
    import re

    m = re.search(r"layer\.(\d+)", node)
    if m:
        return f"layer.{int(m.group(1)):02d}"
    return node  # embeddings, their projection and the classifier: each node on its own


def float_nodes(graph, opts: QuantOptions) -> list[str]:
    """The MatMuls of a pre-processed graph that `opts` keeps in float besides `opts.exclude`."""
    suffixes = (HEAD_SUFFIXES if opts.float_head else ()) + (PROJECTION_SUFFIXES if opts.float_projection else ())
    return [n for n in quantizable_nodes(graph, ["MatMul"]) if n.endswith(suffixes)]


def _quantize(src: Path, out: Path, opts: QuantOptions) -> None:
    import onnx

    quantize_model(onnx.load(str(src)), out, opts)  # loaded once: lookups, embedding rewrite, quantization


def quantize_model(model, out: Path, opts: QuantOptions, *, also_exclude: tuple[str, ...] = (),
                   attention: bool = False) -> None:
    """Quantize a loaded, pre-processed model (attention-fused or not) to `out` as `opts` asks.

    The one place koner calls onnxruntime's quantizer: `opts.exclude`, the float head and projection and
    `also_exclude` stay float; embedding tables become fp16 / row-scaled int8 when Gather is quantized;
    `attention` also quantizes fused Attention nodes (to QAttention) when MatMul is.
    """
    exclude = list(opts.exclude) + float_nodes(model.graph, opts) + list(also_exclude)
    if "Gather" in opts.op_types:
        exclude += rewrite_embeddings(model, skip=set(exclude), storage=opts.embeddings)
    op_types = list(opts.op_types) + (["Attention"] if attention and "MatMul" in opts.op_types else [])
    if not op_types:  # onnxruntime reads an empty list as "every op type"
        import onnx

        onnx.save(model, str(out))
        return
    _quantize_dynamic(model, out, opts, exclude, op_types)


EMBEDDING_STORAGE = ("fp16", "int8")


def rewrite_embeddings(model, skip: set[str], storage: str = "fp16") -> list[str]:
    """Rewrite `model`'s embedding lookups in place to read fp16 or per-row int8 tables; returns the nodes changed.

    fp16 (half the float size, relative error 2e-4): Gather from the fp16 table, Cast. int8 (a quarter of
    the float size, relative error 7e-3 on the stand-in's table): int8 table + fp16 scale per row, Gather
    both, Cast, multiply. One scale per row, not one for a whole 35,000-row table, so rare pieces with small
    vectors keep their resolution.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    if storage not in EMBEDDING_STORAGE:
        raise ValueError(f"embedding storage {storage!r}: choose one of {', '.join(EMBEDDING_STORAGE)}")
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    changed: list[str] = []

    def rule(node) -> Optional[list]:
        table = inits.get(node.input[0]) if node.op_type == "Gather" else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if (table is None or node.name in skip or axis != 0 or len(table.dims) != 2
                or table.data_type != onnx.TensorProto.FLOAT):
            return None
        w = numpy_helper.to_array(table).astype(np.float32)
        base, name, ids, y = table.name, node.name, node.input[1], node.output[0]
        graph.initializer.remove(table)
        changed.append(name)
        if storage == "fp16":
            graph.initializer.append(numpy_helper.from_array(w.astype(np.float16), base + "_fp16"))
            return [helper.make_node("Gather", [base + "_fp16", ids], [y + "_h"], name=name),
                    helper.make_node("Cast", [y + "_h"], [y], name=name + "/cast", to=onnx.TensorProto.FLOAT)]
        peak = np.abs(w).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float16)  # fp16: half the bytes, 1e-3 relative
        q = np.clip(np.round(w / scale[:, None].astype(np.float32)), -127, 127).astype(np.int8)
        graph.initializer.extend([numpy_helper.from_array(q, base + "_quantized"),
                                  numpy_helper.from_array(scale, base + "_row_scale"),
                                  numpy_helper.from_array(np.array([-1], np.int64), base + "_last_axis")])
        changed.append(name + "/scale")
        return [
            helper.make_node("Gather", [base + "_quantized", ids], [y + "_q"], name=name),
            helper.make_node("Cast", [y + "_q"], [y + "_f"], name=name + "/cast", to=onnx.TensorProto.FLOAT),
            helper.make_node("Gather", [base + "_row_scale", ids], [y + "_s"], name=name + "/scale"),
            helper.make_node("Unsqueeze", [y + "_s", base + "_last_axis"], [y + "_s1"], name=name + "/unsqueeze"),
            helper.make_node("Cast", [y + "_s1"], [y + "_s2"], name=name + "/scale_cast", to=onnx.TensorProto.FLOAT),
            helper.make_node("Mul", [y + "_f", y + "_s2"], [y], name=name + "/dequantize"),
        ]

    rewrite_each(graph, rule)
    return changed


def _quantize_dynamic(model, out: Path, opts: QuantOptions, exclude: list[str], op_types: list[str]) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(model, str(out), weight_type=QuantType.QUInt8 if opts.u8u8 else QuantType.QInt8,
                     op_types_to_quantize=op_types, nodes_to_exclude=exclude, per_channel=opts.per_channel,
                     reduce_range=opts.reduce_range,
                     # contrib ops (a fused Attention) have no ONNX shape inference: their outputs are float
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def quantizable_nodes(graph, op_types: list[str]) -> list[str]:
    """Names of the nodes of a pre-processed graph that quantization would touch."""
    weights = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type in op_types and any(x in weights for x in n.input)]
