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

    def to_json(self) -> dict:
        """The options as written into the manifest."""
        d = asdict(self)
        d["weight_type"] = "uint8" if self.u8u8 else "int8"
        return d


def quantize(fp32: Path, out: Path, opts: QuantOptions) -> None:
    """Write the dynamically quantized model of `fp32` to `out`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # constant folding and shape inference: a smaller graph, same arithmetic
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_dynamic(str(pre), str(out), weight_type=QuantType.QUInt8 if opts.u8u8 else QuantType.QInt8,
                         op_types_to_quantize=list(opts.op_types), nodes_to_exclude=list(opts.exclude),
                         per_channel=opts.per_channel, reduce_range=opts.reduce_range)


def quantizable_nodes(fp32: Path, op_types: list[str]) -> list[str]:
    """Names of the nodes of the pre-processed graph that quantization would touch."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre)).graph
    weights = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type in op_types and any(x in weights for x in n.input)]
