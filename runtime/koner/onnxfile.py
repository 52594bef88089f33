"""What koner checks in an ONNX model file, read from its protobuf bytes without the onnx package.

A minimal reader of the protobuf wire format over the file (memory-mapped; weights inside the file are
skipped, never copied): the external-data `location` of every tensor (initializers, sparse initializers,
tensors in node attributes, subgraphs, functions, training graphs), each initializer's shape, and the rows of
the embedding tables the graph looks tokens and positions up in.
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

# Field numbers of onnx.proto (onnx/onnx.proto3), the only ones read here.
_MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 20, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_SPARSE = 1, 5, 11, 15
_NODE_INPUT, _NODE_OP, _NODE_ATTRIBUTE = 1, 4, 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_TENSOR_DIMS, _TENSOR_NAME, _TENSOR_EXTERNAL = 1, 8, 13
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_FUNCTION_NODE = 7
_TRAINING_GRAPHS = (1, 2)  # TrainingInfoProto.initialization, .algorithm
_MAX_DEPTH = 64  # subgraphs nested deeper than this are not a model koner exported


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass
class GraphInfo:
    """What `read_graph` found in a model file."""

    locations: set = field(default_factory=set)  # every external-data `location`, as written in the file
    shapes: dict = field(default_factory=dict)  # initializer name -> dims (the main graph's)
    inputs: list = field(default_factory=list)  # the main graph's input names
    word_rows: Optional[int] = None  # rows of the table `input_ids` index (the vocabulary the graph holds)
    position_rows: Optional[int] = None  # rows of the position-embedding table, where the graph has one


def read_graph(path: Path) -> GraphInfo:
    """Read `path`'s external-data locations and embedding-table sizes; ProtobufError if it is not protobuf."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size == 0:
            raise ProtobufError("the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _model(mm)


def _varint(buf: mmap.mmap, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ProtobufError("a varint runs past its message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: mmap.mmap, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: an int for varints, (start, end) for length-delimited
    fields, None for fixed-width ones (skipped)."""
    pos = start
    while pos < end:
        key = buf[pos]  # one-byte varints (most keys and lengths here) read inline
        if key & 0x80:
            key, pos = _varint(buf, pos, end)
        else:
            pos += 1
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == 2:
            if pos < end and not buf[pos] & 0x80:
                length = buf[pos]
                pos += 1
            else:
                length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise ProtobufError("a field runs past its message")
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise ProtobufError("a fixed-width field runs past its message")
            yield number, wire, None
        else:  # groups (3, 4) are not used by onnx.proto; 6 and 7 do not exist
            raise ProtobufError(f"wire type {wire}")


def _text(buf: mmap.mmap, span: tuple[int, int]) -> str:
    try:
        return buf[span[0]:span[1]].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError("a string is not UTF-8") from None


def _model(buf: mmap.mmap) -> GraphInfo:
    info = GraphInfo()
    for number, wire, value in _fields(buf, 0, len(buf)):
        if wire != 2:
            continue
        if number == _MODEL_GRAPH:
            _graph(buf, value, info, 0, main=True)
        elif number == _MODEL_FUNCTIONS:
            for n, w, v in _fields(buf, *value):
                if n == _FUNCTION_NODE and w == 2:
                    _node(buf, v, info, 1, None)
        elif number == _MODEL_TRAINING:
            for n, w, v in _fields(buf, *value):
                if n in _TRAINING_GRAPHS and w == 2:
                    _graph(buf, v, info, 1, main=False)
    return info


def _graph(buf: mmap.mmap, span: tuple[int, int], info: GraphInfo, depth: int, main: bool) -> None:
    if depth > _MAX_DEPTH:
        raise ProtobufError(f"subgraphs nested more than {_MAX_DEPTH} deep")
    lookups: list = []  # (op, inputs) of the main graph's table lookups
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == _GRAPH_INITIALIZER:
            name, dims = _tensor(buf, value, info)
            if main:
                info.shapes[name] = dims
        elif number == _GRAPH_SPARSE:
            _sparse(buf, value, info)
        elif number == _GRAPH_NODE:
            _node(buf, value, info, depth, lookups if main else None)
        elif number == _GRAPH_INPUT and main:
            for n, w, v in _fields(buf, *value):
                if n == 1 and w == 2:  # ValueInfoProto.name
                    info.inputs.append(_text(buf, v))
    if main:
        _embedding_rows(info, lookups)


def _node(buf: mmap.mmap, span: tuple[int, int], info: GraphInfo, depth: int, lookups: Optional[list]) -> None:
    op, inputs = "", []
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == _NODE_INPUT:
            inputs.append(_text(buf, value))
        elif number == _NODE_OP:
            op = _text(buf, value)
        elif number == _NODE_ATTRIBUTE:
            _attribute(buf, value, info, depth)
    if lookups is not None and op in ("Gather", "EmbedLayerNormalization"):
        lookups.append((op, inputs))


def _attribute(buf: mmap.mmap, span: tuple[int, int], info: GraphInfo, depth: int) -> None:
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number in (_ATTR_T, _ATTR_TENSORS):
            _tensor(buf, value, info)
        elif number in (_ATTR_G, _ATTR_GRAPHS):
            _graph(buf, value, info, depth + 1, main=False)
        elif number in (_ATTR_SPARSE, _ATTR_SPARSES):
            _sparse(buf, value, info)


def _sparse(buf: mmap.mmap, span: tuple[int, int], info: GraphInfo) -> None:
    for number, wire, value in _fields(buf, *span):
        if number in (_SPARSE_VALUES, _SPARSE_INDICES) and wire == 2:
            _tensor(buf, value, info)


def _tensor(buf: mmap.mmap, span: tuple[int, int], info: GraphInfo) -> tuple[str, tuple]:
    """A TensorProto's name and dims; its external-data location goes into `info.locations`."""
    name, dims = "", []  # type: str, list[int]
    for number, wire, value in _fields(buf, *span):
        if number == _TENSOR_DIMS:
            if wire == 0:
                dims.append(value)
            elif wire == 2:  # packed
                pos, end = value
                while pos < end:
                    d, pos = _varint(buf, pos, end)
                    dims.append(d)
        elif number == _TENSOR_NAME and wire == 2:
            name = _text(buf, value)
        elif number == _TENSOR_EXTERNAL and wire == 2:
            key = val = None
            for n, w, v in _fields(buf, *value):  # StringStringEntryProto: key 1, value 2
                if w == 2 and n == 1:
                    key = _text(buf, v)
                elif w == 2 and n == 2:
                    val = _text(buf, v)
            if key == "location":
                info.locations.add(val if val is not None else "")
    return name, tuple(d - (1 << 64) if d >= 1 << 63 else d for d in dims)


def _embedding_rows(info: GraphInfo, lookups: list) -> None:
    """The rows of the word table (indexed by `input_ids`) and of the position table (an initializer named
    `...position_embeddings...`, as transformers names it), from the main graph's Gather and
    EmbedLayerNormalization nodes."""
    def rows(name: str) -> Optional[int]:
        dims = info.shapes.get(name)
        return dims[0] if dims and len(dims) == 2 else None

    for op, inputs in lookups:
        if op == "EmbedLayerNormalization" and len(inputs) > 3:  # ids, segments, word, position, ...
            info.word_rows = info.word_rows if info.word_rows is not None else rows(inputs[2])
            info.position_rows = info.position_rows if info.position_rows is not None else rows(inputs[3])
        elif op == "Gather" and len(inputs) == 2:
            data, indices = inputs
            if indices == "input_ids" and info.word_rows is None:
                info.word_rows = rows(data)
            elif "position_embeddings" in data and info.position_rows is None:
                info.position_rows = rows(data)
