"""The graph reader (`koner.onnxfile`, no onnx package) against the onnx package itself: the same initializer
shapes, inputs and every external-data location, wherever the file keeps it."""
from support.extras import needs

onnx = needs("onnx")


def test_the_graph_reader_agrees_with_onnx():
    from koner.ner import DEFAULT_MODEL
    from koner.onnxfile import read_graph

    info = read_graph(DEFAULT_MODEL / "model.onnx")
    model = onnx.load(str(DEFAULT_MODEL / "model.onnx"), load_external_data=False)
    assert info.shapes == {t.name: tuple(t.dims) for t in model.graph.initializer}
    assert info.locations == {"model.onnx.data"} and (info.word_rows, info.position_rows) == (35000, 512)
    assert info.inputs == ["input_ids", "attention_mask", "token_type_ids"]


def test_the_graph_reader_finds_external_data_anywhere_in_the_file(tmp_path):
    """Initializers, sparse initializers, tensors in node attributes and subgraphs, functions: every location."""
    from onnx import TensorProto, helper

    from koner.onnxfile import read_graph

    def external(name, location):
        t = helper.make_tensor(name, TensorProto.FLOAT, [2], [0.0, 0.0])
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = "location", location
        return t

    branch = helper.make_graph([helper.make_node("Constant", [], ["c"], value=external("c", "/in/subgraph"))],
                               "branch", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])],
                               initializer=[external("g", "../sub.bin")])
    nodes = [helper.make_node("Constant", [], ["k"], value=external("k", "attr.bin")),
             helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)]
    sparse = helper.make_sparse_tensor(external("sv", "sparse.bin"), helper.make_tensor("si", TensorProto.INT64, [1],
                                                                                         [0]), [2])
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              initializer=[external("w", "weights.bin")], sparse_initializer=[sparse])
    fn = helper.make_function("local", "f", [], ["z"], [helper.make_node("Constant", [], ["z"],
                                                                          value=external("z", "function.bin"))],
                              [helper.make_opsetid("", 17)])
    model = helper.make_model(graph, functions=[fn], opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    assert read_graph(path).locations == {"weights.bin", "attr.bin", "../sub.bin", "/in/subgraph", "sparse.bin",
                                          "function.bin"}
