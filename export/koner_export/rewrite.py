"""Graph rewrites chosen by measurement, applied to onnx models in place (see benchmarks/graph_candidates.py).

Each function takes an `onnx.ModelProto`, changes it and returns how many places it changed:

- `split_skip_layernorm`: onnxruntime's SkipLayerNormalization kernel is slow on CPU for this model's
  small hidden width; an Add and a plain LayerNormalization compute the same thing faster.
- `per_row_activations`: dynamic int8 with one scale per token instead of one per call, so a text's
  numbers do not depend on the texts padded into the same call (batch invariance).

`rewrite_each` is the one loop they share: each node kept, or replaced by the nodes a rule gives for it.
(Rewrites that were measured and not chosen live in benchmarks/graph_rewrites.py.)
"""
from __future__ import annotations

from typing import Callable, Optional

MS_DOMAIN = "com.microsoft"


def set_nodes(graph, nodes: list) -> None:
    """Make `nodes` the graph's node list, in that order."""
    del graph.node[:]
    graph.node.extend(nodes)


def rewrite_each(graph, rule: Callable[[object], Optional[list]]) -> int:
    """Replace each node for which `rule` returns a list by that list (None keeps it); returns the nodes replaced."""
    nodes, changed = [], 0
    for node in graph.node:
        replacement = rule(node)
        if replacement is None:
            nodes.append(node)
        else:
            nodes.extend(replacement)
            changed += 1
    if changed:
        set_nodes(graph, nodes)
    return changed


def _consumers(graph, nodes: Optional[list] = None) -> dict[str, list]:
    users: dict[str, list] = {}
    for node in graph.node if nodes is None else nodes:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _graph_outputs(graph) -> set[str]:
    return {o.name for o in graph.output}


def split_skip_layernorm(model) -> int:
    """Rewrite every SkipLayerNormalization as Add (+ bias Add) + LayerNormalization; returns the nodes rewritten."""
    from onnx import helper

    graph = model.graph
    used = set(_consumers(graph)) | _graph_outputs(graph)

    def rule(node) -> Optional[list]:
        if node.op_type != "SkipLayerNormalization" or node.domain != MS_DOMAIN:
            return None
        outs = list(node.output) + [""] * (4 - len(node.output))
        if any(o and o in used for o in outs[1:3]):  # mean / inverse std dev: training outputs, never read here
            return None
        x, skip, gamma = node.input[0], node.input[1], node.input[2]
        beta = node.input[3] if len(node.input) > 3 else ""
        bias = node.input[4] if len(node.input) > 4 else ""
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        name = node.name or outs[0]
        total = outs[3] if outs[3] and outs[3] in used else name + "/sum"
        if bias:  # the bias first: `fold_bias` can then move it into the MatMul that produced `x`
            adds = [helper.make_node("Add", [x, bias], [name + "/biased"], name=name + "/add_bias"),
                    helper.make_node("Add", [name + "/biased", skip], [total], name=name + "/add_skip")]
        else:
            adds = [helper.make_node("Add", [x, skip], [total], name=name + "/add")]
        ln_inputs = [total, gamma] + ([beta] if beta else [])
        return adds + [helper.make_node("LayerNormalization", ln_inputs, [outs[0]], name=name + "/layernorm",
                                        axis=-1, epsilon=eps)]

    return rewrite_each(graph, rule)


def split_bias_gelu(model) -> int:
    """Rewrite every BiasGelu as Add + Gelu (for `fold_bias` to take the Add); returns the nodes rewritten."""
    from onnx import helper

    def rule(node) -> Optional[list]:
        if node.op_type != "BiasGelu" or node.domain != MS_DOMAIN:
            return None
        name = node.name or node.output[0]
        return [helper.make_node("Add", list(node.input), [name + "/biased"], name=name + "/add_bias"),
                helper.make_node("Gelu", [name + "/biased"], list(node.output), name=name + "/gelu",
                                 domain=MS_DOMAIN)]

    return rewrite_each(model.graph, rule)


# The int8 MatMul contrib ops and the position of their optional bias input.
_BIAS_INPUT = {"DynamicQuantizeMatMul": 4, "MatMulIntegerToFloat": 6}


def fold_bias(model) -> int:
    """Move each constant 1-D bias Add that follows an int8 MatMul into that MatMul's bias input; returns the count."""
    from onnx import TensorProto

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    users = _consumers(graph)
    outputs = _graph_outputs(graph)
    producer = {o: n for n in graph.node for o in n.output}
    drop, changed = set(), 0
    for node in graph.node:
        if node.op_type != "Add" or node.domain not in ("", "ai.onnx") or len(node.input) != 2:
            continue
        for i in (0, 1):
            x, b = node.input[i], node.input[1 - i]
            mm = producer.get(x)
            w = inits.get(b)
            if (mm is None or mm.domain != MS_DOMAIN or mm.op_type not in _BIAS_INPUT or w is None
                    or len(w.dims) != 1 or w.data_type != TensorProto.FLOAT or len(users.get(x, [])) != 1
                    or x in outputs):
                continue
            at = _BIAS_INPUT[mm.op_type]
            weight = inits.get(mm.input[1])
            if (len(mm.input) > at and mm.input[at]) or weight is None or not weight.dims \
                    or w.dims[0] != weight.dims[-1]:  # a bias the width of the product's columns, nothing else
                continue
            while len(mm.input) < at:
                mm.input.append("")
            if len(mm.input) == at:
                mm.input.append(b)
            else:
                mm.input[at] = b
            mm.output[0] = node.output[0]
            drop.add(id(node))
            changed += 1
            break
    if changed:
        set_nodes(graph, [n for n in graph.node if id(n) not in drop])
    return changed


def per_row_activations(model) -> int:
    """Quantize each DynamicQuantizeLinear's input row by row (one scale per token); returns the nodes rewritten.

    Works on the graph onnxruntime's quantizer writes (DynamicQuantizeLinear, then MatMulInteger, Cast and
    Mul by `a_scale * b_scale` for each product). Activations become uint8 with zero point 128 and scale
    max|row| / 127 (a symmetric range, so the zero point is a constant). onnxruntime's MatMulIntegerToFloat
    reads its activation scale as one number, so each product becomes MatMulIntegerToFloat with activation
    scale 1 and the weight's scale, and a Mul by the per-row scale after it.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    consts = {
        "koner_row_127": np.array(127.0, np.float32),
        "koner_row_128": np.array(128.0, np.float32),
        "koner_row_one": np.array(1.0, np.float32),
        "koner_row_tiny": np.array(1e-30, np.float32),
        "koner_row_zero_point": np.array(128, np.uint8),
        "koner_row_axes": np.array([-1], np.int64),
    }
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    rows: dict[str, tuple[str, str]] = {}  # quantized tensor -> (its per-row scale, the old per-call scale)

    def rule(node) -> Optional[list]:
        if node.op_type != "DynamicQuantizeLinear" or node.domain not in ("", "ai.onnx"):
            return None
        x = node.input[0]
        q, scale, zp = node.output
        p = (node.name or q) + "/row"
        row = p + "_scale"
        if opset >= 18:
            reduce = helper.make_node("ReduceMax", [p + "_abs", "koner_row_axes"], [p + "_max"], name=p + "_max",
                                      keepdims=1)
        else:
            reduce = helper.make_node("ReduceMax", [p + "_abs"], [p + "_max"], name=p + "_max", axes=[-1], keepdims=1)
        rows[q] = (row, scale)
        return [
            helper.make_node("Abs", [x], [p + "_abs"], name=p + "_abs"),
            reduce,
            helper.make_node("Max", [p + "_max", "koner_row_tiny"], [p + "_peak"], name=p + "_peak"),
            helper.make_node("Div", [p + "_peak", "koner_row_127"], [row], name=p + "_scale"),
            helper.make_node("Div", [x, row], [p + "_scaled"], name=p + "_scaled"),
            helper.make_node("Round", [p + "_scaled"], [p + "_round"], name=p + "_round"),
            helper.make_node("Add", [p + "_round", "koner_row_128"], [p + "_shift"], name=p + "_shift"),
            helper.make_node("Cast", [p + "_shift"], [q], name=p + "_cast", to=TensorProto.UINT8),
            helper.make_node("Identity", ["koner_row_zero_point"], [zp], name=p + "_zero_point"),
        ]

    changed = rewrite_each(graph, rule)
    if not changed:
        return 0
    nodes = list(graph.node)  # one list of the rewritten graph's nodes: `users` and the loop below share its objects
    users = _consumers(graph, nodes)
    drop: set[int] = set()
    replace: dict[int, list] = {}
    for node in nodes:
        if node.op_type != "MatMulInteger" or node.input[0] not in rows:
            continue
        row, scale = rows[node.input[0]]
        cast = users.get(node.output[0], [])
        prod = users.get(cast[0].output[0], []) if len(cast) == 1 and cast[0].op_type == "Cast" else []
        if len(prod) != 1 or prod[0].op_type != "Mul":
            raise ValueError(f"{node.name}: not the quantizer's MatMulInteger -> Cast -> Mul chain")
        scales_mul = next((n for n in users.get(scale, []) if n.output[0] in prod[0].input), None)
        if scales_mul is None:
            raise ValueError(f"{node.name}: its output is not scaled by its activation scale")
        w_scale = next(i for i in scales_mul.input if i != scale)
        y = prod[0].output[0]
        name = node.name or y
        a_zp = node.input[2] if len(node.input) > 2 else ""
        w_zp = node.input[3] if len(node.input) > 3 else ""
        replace[id(node)] = [
            helper.make_node("MatMulIntegerToFloat", [node.input[0], node.input[1], "koner_row_one", w_scale, a_zp, w_zp],
                             [y + "_unit"], name=name + "/to_float", domain=MS_DOMAIN),
            helper.make_node("Mul", [y + "_unit", row], [y], name=name + "/row_scale")]
        drop |= {id(cast[0]), id(prod[0])}
        if len(users.get(scales_mul.output[0], [])) == 1:
            drop.add(id(scales_mul))
    out = []
    for node in nodes:
        if id(node) in drop:
            continue
        out.extend(replace.get(id(node), [node]))
    have = {i.name for i in graph.initializer}
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items() if k not in have)
    set_nodes(graph, out)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return changed
