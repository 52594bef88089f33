"""fp32 ONNX -> dynamic int8 ONNX with onnxruntime.quantization."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, asdict
from pathlib import Path


@dataclass
class QuantOptions:
    """Dynamic quantization settings; the defaults give signed int8 weights, embeddings included."""

    per_channel: bool = False
    reduce_range: bool = False
    u8u8: bool = False  # uint8 weights: for AVX2/AVX-512 CPUs without VNNI, where u8*s8 can saturate
    op_types: list[str] = field(default_factory=lambda: ["MatMul", "Gather"])
    exclude: list[str] = field(default_factory=list)  # node names kept in float
    float_head: bool = True  # keep the classifier in float (~24 KB)
    row_embeddings: bool = True  # embedding tables: int8 with one scale per row, not one per table

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


def head_nodes(preprocessed: Path) -> list[str]:
    """The classifier MatMul of a pre-processed graph (named by transformers' module path)."""
    import onnx

    return _head_nodes(onnx.load(str(preprocessed)).graph)


def _head_nodes(graph) -> list[str]:
    return [n for n in _quantizable(graph, ["MatMul"]) if n.endswith(HEAD_SUFFIXES)]


def _quantize(src: Path, out: Path, opts: QuantOptions) -> None:
    import onnx

    model = onnx.load(str(src))  # loaded once: head lookup, embedding rewrite and quantization share it
    exclude = list(opts.exclude) + (_head_nodes(model.graph) if opts.float_head else [])
    if opts.row_embeddings and "Gather" in opts.op_types:
        exclude += quantize_embeddings(model, skip=set(exclude))
    _quantize_dynamic(model, out, opts, exclude)


def quantize_embeddings(model, skip: set[str]) -> list[str]:
    """Rewrite `model`'s embedding lookups in place: int8 table + fp16 per-row scale, Gather both, Cast, multiply.

    One scale for a whole 35,000-row table lets its widest rows set the step for all of them, so rare
    pieces with small vectors lose most of their bits; a scale per row costs 2 bytes a row and keeps every
    row's resolution. Returns the names of the nodes changed.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    changed, nodes = [], []
    for node in graph.node:
        table = inits.get(node.input[0]) if node.op_type == "Gather" else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if (table is None or node.name in skip or axis != 0 or len(table.dims) != 2
                or table.data_type != onnx.TensorProto.FLOAT):
            nodes.append(node)
            continue
        w = numpy_helper.to_array(table).astype(np.float32)
        peak = np.abs(w).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float16)  # fp16: half the bytes, 1e-3 relative
        q = np.clip(np.round(w / scale[:, None].astype(np.float32)), -127, 127).astype(np.int8)
        base, name, ids, y = table.name, node.name, node.input[1], node.output[0]
        graph.initializer.remove(table)
        graph.initializer.extend([numpy_helper.from_array(q, base + "_quantized"),
                                  numpy_helper.from_array(scale, base + "_row_scale"),
                                  numpy_helper.from_array(np.array([-1], np.int64), base + "_last_axis")])
        nodes += [
            helper.make_node("Gather", [base + "_quantized", ids], [y + "_q"], name=name),
            helper.make_node("Cast", [y + "_q"], [y + "_f"], name=name + "/cast", to=onnx.TensorProto.FLOAT),
            helper.make_node("Gather", [base + "_row_scale", ids], [y + "_s"], name=name + "/scale"),
            helper.make_node("Unsqueeze", [y + "_s", base + "_last_axis"], [y + "_s1"], name=name + "/unsqueeze"),
            helper.make_node("Cast", [y + "_s1"], [y + "_s2"], name=name + "/scale_cast", to=onnx.TensorProto.FLOAT),
            helper.make_node("Mul", [y + "_f", y + "_s2"], [y], name=name + "/dequantize"),
        ]
        changed += [name, name + "/scale"]
    if changed:
        del graph.node[:]
        graph.node.extend(nodes)
    return changed


def _quantize_dynamic(model, out: Path, opts: QuantOptions, exclude: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(model, str(out), weight_type=QuantType.QUInt8 if opts.u8u8 else QuantType.QInt8,
                     op_types_to_quantize=list(opts.op_types), nodes_to_exclude=exclude,
                     per_channel=opts.per_channel, reduce_range=opts.reduce_range)


def quantizable_nodes(preprocessed: Path, op_types: list[str]) -> list[str]:
    """Names of the nodes of a pre-processed graph that quantization would touch."""
    import onnx

    return _quantizable(onnx.load(str(preprocessed)).graph, op_types)


def _quantizable(graph, op_types: list[str]) -> list[str]:
    weights = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type in op_types and any(x in weights for x in n.input)]
