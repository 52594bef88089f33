"""The int8 graph koner exports: its rewrites compute what onnxruntime's fused nodes compute, the export
writes the fused-attention graph by default, and per-token scales make a text's numbers independent of
the texts batched with it."""
import json

import numpy as np
import pytest

from support.extras import needs

from koner import NER

onnx = needs("onnx")
ort = pytest.importorskip("onnxruntime")

from koner_export import rewrite  # noqa: E402

TEXTS = ["아이유 노래 검색해줘.", "서울역으로 안내해줘.", "2023년 3월 15일 오후 3시에 서울 서초구 삼성전자 본사에서 "
         "이재용 회장이 기자회견을 열고 반도체 투자 계획을 발표했다.", "에어컨 온도 3도 올려줘.",
         "내일 부산 날씨 어때?", "손흥민이 토트넘에서 골을 넣었다."]


def _tiny_fused_model():
    """x -> int8 MatMul -> SkipLayerNormalization(bias) -> int8 MatMul -> BiasGelu, as onnxruntime fuses them."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    w1 = rng.integers(-127, 128, (16, 16), dtype=np.int8)
    w2 = rng.integers(-127, 128, (16, 32), dtype=np.int8)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(np.array(0.01, np.float32), "s1"),
             numpy_helper.from_array(np.array(0, np.int8), "z1"),
             numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(np.array(0.02, np.float32), "s2"),
             numpy_helper.from_array(np.array(0, np.int8), "z2"),
             numpy_helper.from_array(rng.normal(size=16).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.normal(size=16).astype(np.float32), "beta"),
             numpy_helper.from_array(rng.normal(size=16).astype(np.float32), "bias1"),
             numpy_helper.from_array(rng.normal(size=32).astype(np.float32), "bias2")]
    ms = "com.microsoft"
    nodes = [helper.make_node("DynamicQuantizeMatMul", ["x", "w1", "s1", "z1", ""], ["y1"], domain=ms),
             helper.make_node("SkipLayerNormalization", ["y1", "x", "gamma", "beta", "bias1"], ["y2"], domain=ms,
                              epsilon=1e-12),
             helper.make_node("DynamicQuantizeMatMul", ["y2", "w2", "s2", "z2", ""], ["y3"], domain=ms),
             helper.make_node("BiasGelu", ["y3", "bias2"], ["out"], domain=ms)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 16])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5, 32])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)])


def _run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_split_and_folded_nodes_compute_what_the_fused_ones_do():
    model = _tiny_fused_model()
    x = np.random.default_rng(1).normal(size=(1, 5, 16)).astype(np.float32)
    want = _run(model, x)
    assert rewrite.split_skip_layernorm(model) == 1
    assert rewrite.split_bias_gelu(model) == 1
    assert rewrite.fold_bias(model) == 2  # both biases now ride in the int8 MatMuls
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["DynamicQuantizeMatMul", "Add", "LayerNormalization", "DynamicQuantizeMatMul", "Gelu"], ops
    assert [n.input[4] for n in model.graph.node if n.op_type == "DynamicQuantizeMatMul"] == ["bias1", "bias2"]
    onnx.checker.check_model(model)
    np.testing.assert_allclose(_run(model, x), want, rtol=1e-5, atol=1e-5)


def test_a_bias_whose_matmul_output_is_read_elsewhere_is_not_folded():
    from onnx import helper

    model = _tiny_fused_model()
    rewrite.split_skip_layernorm(model)
    model.graph.output.append(helper.make_tensor_value_info("y1", onnx.TensorProto.FLOAT, [1, 5, 16]))
    x = np.random.default_rng(2).normal(size=(1, 5, 16)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert rewrite.fold_bias(model) == 0  # y1 is a graph output: it must stay the bare product
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_the_export_writes_the_fused_attention_graph(export_dir):
    manifest = json.loads((export_dir / "koner.json").read_text("utf-8"))
    graph = manifest["export"]["graph"]
    assert graph["graph"] == "fused" and graph["activations"] == "per-tensor"
    assert graph["attention_fused"] == 12 and graph["bias_folded"] == 36
    ops = {n.op_type for n in onnx.load(str(export_dir / "model.onnx"), load_external_data=False).graph.node}
    assert "QAttention" in ops
    assert not ops & {"SkipLayerNormalization", "BiasGelu", "Transpose"}, ops


def test_the_bundled_model_is_the_fused_graph():
    from koner.ner import DEFAULT_MODEL

    manifest = json.loads((DEFAULT_MODEL / "koner.json").read_text("utf-8"))
    assert manifest["export"]["graph"]["graph"] == "fused"
    ops = {n.op_type for n in onnx.load(str(DEFAULT_MODEL / "model.onnx"), load_external_data=False).graph.node}
    assert "QAttention" in ops and "SkipLayerNormalization" not in ops


@pytest.fixture(scope="module")
def per_token_dir(tmp_path_factory):
    needs("torch")
    from support import STANDIN
    from koner_export import export_model
    from koner_export.quantize import QuantOptions

    out = tmp_path_factory.mktemp("per-token") / "model"
    export_model(str(STANDIN), out, quant=QuantOptions(activations="per-token"), parity=False, keep_fp32=True,
                 progress=lambda m: None)
    return out


def test_per_token_scales_stay_as_close_to_float_as_per_tensor_ones(per_token_dir, export_dir):
    per_token = NER.load(per_token_dir, workers=1)
    per_tensor = NER.load(export_dir, workers=1)
    fp32 = NER.load(export_dir, workers=1, model_file="model-fp32.onnx")
    worst = {"per-token": 0.0, "per-tensor": 0.0}
    for text in TEXTS:
        t = fp32.tokenizer.encode(text)
        ids, mask = t.ids[None, :], np.ones((1, len(t.ids)), np.int64)
        ref = fp32.session.run(ids, mask)[0]
        for name, ner in (("per-token", per_token), ("per-tensor", per_tensor)):
            got = ner.session.run(ids, mask)[0]
            worst[name] = max(worst[name], float(np.abs(got - ref).max()))
            assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.9, (name, text)
    assert worst["per-token"] <= 1.5 * worst["per-tensor"], worst  # one scale a row is no rougher than one a call


def test_per_token_scales_give_each_text_the_same_numbers_alone_and_in_any_batch(per_token_dir):
    manifest = json.loads((per_token_dir / "koner.json").read_text("utf-8"))
    assert manifest["quantization"]["activations"] == "per-token"
    ner = NER.load(per_token_dir, workers=1)
    alone = [[e.to_dict() for e in ner(t)] for t in TEXTS]
    rows_per_call = []
    run = ner.session.run

    def counting(ids, mask):
        rows_per_call.append(ids.shape[0])
        return run(ids, mask)

    ner.session.run = counting
    for batch_size in (2, 3, 6):
        rows_per_call.clear()
        batched = [[e.to_dict() for e in ents] for ents in ner.batch(TEXTS, batch_size=batch_size)]
        assert max(rows_per_call) == batch_size  # the texts really were padded into one call
        assert batched == alone, batch_size  # scores included, to the last bit
    long_text = " ".join(TEXTS * 40)  # over 512 tokens: windows, batched with short texts
    mixed = ner.batch([TEXTS[0], long_text, TEXTS[1]], batch_size=3)
    assert [[e.to_dict() for e in ents] for ents in mixed] == [alone[0], [e.to_dict() for e in ner(long_text)], alone[1]]
    ner.session.run = run
    # the session level: a row's logits are bit-identical whatever is padded beside it
    enc = [ner.tokenizer.encode(t) for t in TEXTS]
    width = max(len(e.ids) for e in enc)
    ids = np.zeros((len(enc), width), np.int64)
    mask = np.zeros_like(ids)
    for k, e in enumerate(enc):
        ids[k, :len(e.ids)], mask[k, :len(e.ids)] = e.ids, 1
    together = ner.session.run(ids, mask)
    for k, e in enumerate(enc):
        one = ner.session.run(ids[k:k + 1, :len(e.ids)], mask[k:k + 1, :len(e.ids)])[0]
        np.testing.assert_array_equal(one, together[k, :len(e.ids)])


def test_per_tensor_scales_are_not_batch_invariant_so_the_default_model_runs_texts_alone(export_dir):
    ner = NER.load(export_dir, workers=1)
    enc = [ner.tokenizer.encode(t) for t in TEXTS[:2]]
    width = max(len(e.ids) for e in enc)
    ids = np.zeros((2, width), np.int64)
    mask = np.zeros_like(ids)
    for k, e in enumerate(enc):
        ids[k, :len(e.ids)], mask[k, :len(e.ids)] = e.ids, 1
    one = ner.session.run(ids[:1, :len(enc[0].ids)], mask[:1, :len(enc[0].ids)])[0]
    assert not np.array_equal(one, ner.session.run(ids, mask)[0, :len(enc[0].ids)])  # why one text a call
    alone = [[e.to_dict() for e in ner(t)] for t in TEXTS]
    rows_per_call = []
    run = ner.session.run
    ner.session.run = lambda ids, mask: rows_per_call.append(ids.shape[0]) or run(ids, mask)
    assert [[e.to_dict() for e in ents] for ents in ner.batch(TEXTS, batch_size=6)] == alone
    assert set(rows_per_call) == {1}  # so koner runs them one text a call


def _pair_sums_16bit(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """a [M, K] uint8 @ w [K, N] int8 as AVX2's vpmaddubsw + vpmaddwd compute it: each neighbouring pair of
    products summed in a saturating 16-bit lane, then the pairs summed in 32 bits."""
    prod = a[:, :, None].astype(np.int32) * w[None, :, :].astype(np.int32)  # [M, K, N]
    pairs = np.clip(prod[:, 0::2] + prod[:, 1::2], -32768, 32767)
    return pairs.sum(axis=1)


def test_limited_weight_pairs_give_exact_sums_where_16_bit_pair_sums_saturated():
    from koner_export import saturation

    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (64, 48), dtype=np.int8)
    a = rng.integers(200, 256, (8, 64)).astype(np.uint8)  # large activations: the case that saturates
    exact = a.astype(np.int64) @ w.astype(np.int64)
    assert (_pair_sums_16bit(a, w) != exact).any()  # the raw weights do saturate
    limited, count = saturation.limit(w)
    assert count == int(saturation.risky_pairs(w).sum()) > 0
    assert not saturation.risky_pairs(limited).any()
    assert (_pair_sums_16bit(a, limited) == a.astype(np.int64) @ limited.astype(np.int64)).all()
    changed = limited != w
    assert (np.sign(limited[changed]) * np.sign(w[changed]) >= 0).all()  # smaller magnitudes, never a sign flip
    assert (np.abs(limited[changed].astype(int)) < np.abs(w[changed].astype(int))).all()
    rows = np.repeat(saturation.risky_pairs(w), 2, axis=0)  # only the weights of risky pairs move
    assert not changed[~rows].any()
    again, none = saturation.limit(limited)
    assert none == 0 and (again == limited).all()


def test_the_bundled_model_has_no_weight_pair_that_can_saturate():
    from onnx import numpy_helper

    from koner.ner import DEFAULT_MODEL
    from koner_export import saturation

    manifest = json.loads((DEFAULT_MODEL / "koner.json").read_text("utf-8"))
    assert manifest["quantization"]["limit_pairs"] is True
    assert manifest["export"]["graph"]["pairs_limited"] > 0
    model = onnx.load(str(DEFAULT_MODEL / "model.onnx"))
    inits = {t.name: t for t in model.graph.initializer}
    checked = 0
    for node in model.graph.node:
        if node.op_type in saturation.WEIGHT_INPUT:
            w = numpy_helper.to_array(inits[node.input[1]])
            assert w.dtype == np.int8 and not saturation.risky_pairs(w).any(), node.name
            checked += 1
    assert checked == 48  # 12 layers: QAttention and three int8 MatMuls each
    assert NER.load().manifest.saturation_safe
