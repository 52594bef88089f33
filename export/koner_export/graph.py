"""fp32 ONNX -> the int8 graph koner runs: quantization, fusions and rewrites, in the order measured fastest.

Two graphs (`QuantOptions.graph`), both from onnxruntime's dynamic quantizer (the fused graph's QAttention
quantizes each layer's query, key and value weights as one tensor):

- `fused` (default): onnxruntime's transformer optimizer fuses each attention block into one Attention node
  (quantized to QAttention: no Reshape/Transpose chains), then onnxruntime's extended fusions; after them
  SkipLayerNormalization is split back into Add + LayerNormalization and BiasGelu into Add + Gelu, and
  each bias Add is folded into the int8 MatMul before it. On the stand-in (1 thread, this repository's
  benchmark): 0.79x the time of `onnxruntime` for a sentence, the same labels by the parity gate.
- `onnxruntime`: onnxruntime's extended fusions only (koner's graph before 0.2).

Either way, `QuantOptions.limit_pairs` (default) then brings the few int8 weight pairs whose u8*s8 sums could
saturate on x86 CPUs without VNNI within range (saturation.py), so those CPUs compute the integers a VNNI
CPU computes.

`QuantOptions.activations = "per-token"` quantizes each token's activations with its own scale (batch
invariant: a text's numbers do not depend on the texts padded beside it); QAttention scales its input
per call, so that graph keeps the attention block unfused.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

from . import rewrite, saturation
from .optimize import optimize
from .quantize import QuantOptions, layer_group, preprocess, quantize, quantize_model

GRAPHS = ("fused", "onnxruntime")
ACTIVATIONS = ("per-tensor", "per-token")


def check_graph_options(opts: QuantOptions) -> None:
    """Raise ValueError naming the choices when `opts.graph` or `opts.activations` is unknown."""
    if opts.graph not in GRAPHS:
        raise ValueError(f"graph {opts.graph!r}: choose one of {', '.join(GRAPHS)}")
    if opts.activations not in ACTIVATIONS:
        raise ValueError(f"activations {opts.activations!r}: choose one of {', '.join(ACTIVATIONS)}")


def build_int8(fp32: Path, out: Path, opts: QuantOptions, *, num_heads: Optional[int] = None,
               hidden_size: Optional[int] = None, preprocessed: bool = False) -> dict:
    """Write the int8 model of `fp32` to `out` as `opts` asks; returns what was fused and rewritten.

    `preprocessed`: `fp32` already went through `quantize.preprocess` (accuracy-aware trials reuse it).
    """
    import onnx

    check_graph_options(opts)
    fuse_attention = opts.graph == "fused" and opts.activations == "per-tensor" and bool(num_heads and hidden_size)
    with tempfile.TemporaryDirectory() as tmp:
        pre, quantized = Path(tmp) / "pre.onnx", Path(tmp) / "q.onnx"
        if preprocessed:
            pre = fp32
        else:
            preprocess(fp32, pre)
        info: dict = {"graph": opts.graph, "activations": opts.activations}
        if fuse_attention:
            info["attention_fused"] = quantize_fused(pre, quantized, opts, num_heads, hidden_size)
        else:
            quantize(pre, quantized, opts, preprocessed=True)
        if opts.activations == "per-token":
            model = onnx.load(str(quantized))
            info["per_token_quantizers"] = rewrite.per_row_activations(model)
            onnx.save(model, str(quantized))
        optimize(quantized, out)
    limit = opts.limit_pairs and opts.pairs_can_saturate
    if opts.graph == "fused" or limit:
        model = onnx.load(str(out))
        if opts.graph == "fused":
            info["skip_layernorm_split"] = rewrite.split_skip_layernorm(model)
            if opts.activations == "per-tensor":  # per-token products end in the row-scale Mul: no bias to fold
                info["bias_gelu_split"] = rewrite.split_bias_gelu(model)
                info["bias_folded"] = rewrite.fold_bias(model)
        if limit:
            info["pairs_limited"] = saturation.limit_pairs(model)
        onnx.checker.check_model(model)
        onnx.save(model, str(out))
    return info


def quantize_fused(pre: Path, out: Path, opts: QuantOptions, num_heads: int, hidden_size: int, *,
                   int8_attention: bool = True, embed_layernorm: bool = False) -> int:
    """Fuse attention in the fp32 graph, then quantize it (Attention -> QAttention); returns the blocks fused.

    `int8_attention` False keeps the fused Attention in float; `embed_layernorm` also fuses the embeddings
    (EmbedLayerNormalization, which reads float32 tables). Both are measured alternatives, not export options.
    """
    from onnx import helper
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    fusion = FusionOptions("bert")
    fusion.enable_embed_layer_norm = embed_layernorm  # it reads float32 tables: koner keeps fp16 ones (9 MB smaller)
    model = optimize_model(str(pre), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                           optimization_options=fusion, opt_level=0).model
    if not any(o.domain == rewrite.MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(rewrite.MS_DOMAIN, 1))
    fused = [n for n in model.graph.node if n.op_type == "Attention"]
    names = {n.name for n in model.graph.node}
    kept = _attention_kept_in_float(fused, list(opts.exclude), names)
    quantize_model(model, out, opts, also_exclude=tuple(kept), attention=int8_attention)
    return len(fused)


def _attention_kept_in_float(attention: list, exclude: list[str], names: set[str]) -> list[str]:
    """Attention nodes whose query/key/value MatMuls `exclude` names (they were fused away): kept in float too."""
    lost = {layer_group(n) for n in exclude if n not in names}
    return [n.name for n in attention if layer_group(n.output[0]) in lost]
