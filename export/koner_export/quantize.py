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
    float_head: bool = True  # keep the embedding projection and the classifier in float (~0.1 MB)

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


# The two small MatMuls at the ends of the encoder: int8 rounding there moves every logit directly,
# while keeping them in float costs about 0.1 MB and no measurable time.
HEAD_SUFFIXES = ("embeddings_project/MatMul", "classifier/MatMul")


def head_nodes(preprocessed: Path) -> list[str]:
    """The embedding projection and classifier MatMuls of a pre-processed graph (names from transformers)."""
    return [n for n in quantizable_nodes(preprocessed, ["MatMul"]) if n.endswith(HEAD_SUFFIXES)]


def _quantize(src: Path, out: Path, opts: QuantOptions) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude = list(opts.exclude) + (head_nodes(src) if opts.float_head else [])
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QUInt8 if opts.u8u8 else QuantType.QInt8,
                     op_types_to_quantize=list(opts.op_types), nodes_to_exclude=exclude,
                     per_channel=opts.per_channel, reduce_range=opts.reduce_range)


def quantizable_nodes(preprocessed: Path, op_types: list[str]) -> list[str]:
    """Names of the nodes of a pre-processed graph that quantization would touch."""
    import onnx

    graph = onnx.load(str(preprocessed)).graph
    weights = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type in op_types and any(x in weights for x in n.input)]
