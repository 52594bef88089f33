"""Batch NER for data engines: a picklable predictor that adds an entities column to a table's batches.

`NERPredictor` holds only the model path and options, so it pickles to any worker; the model is loaded
there on first use, once per process (every predictor with the same options in a process shares it).
Batches are Arrow tables or record batches, pandas DataFrames, or dicts of columns (Ray's numpy format);
the answer is the same kind with one column more. In Arrow the column is `entities_type()`. Needs pyarrow
(the `[ray]`, `[spark]` and `[dataset]` extras bring it); pandas only for DataFrames.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from ..choices import check_positive
from ..entity import Entity
from ..errors import ModelNotFoundError
from ..manifest import read_manifest
from ..ner import DEFAULT_MODEL, NER
from ..options import Labels, Merge, Options
from ..spans import entity_types, span_options
from ..system import engine_cpus
from ..tokens import encodable

ENTITY_FIELDS = (("label", "string"), ("start", "int32"), ("end", "int32"), ("score", "float32"),
                 ("text", "string"))
"""The fields of one entity in a table, with their Arrow types; `text` is `text[start:end]`."""

_LOADED: dict[tuple, NER] = {}
_LOADING = threading.Lock()


def entities_type() -> Any:
    """The Arrow type of an entities column: list<struct<label, start, end, score, text>>."""
    import pyarrow as pa

    return pa.list_(pa.struct([pa.field(name, getattr(pa, kind)()) for name, kind in ENTITY_FIELDS]))


def model_folder(model: Union[str, Path, None]) -> Path:
    """The model folder `model` names (None: the bundled model), checked for a readable koner.json."""
    folder = DEFAULT_MODEL if model is None else Path(model).expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError.of(folder, where=" (a path every worker can read, or ship it with the engine)",
                                    bundled="leave it out")
    read_manifest(folder)
    return folder


class NERPredictor:
    """Adds each row's entities (`output_column`) from its text (`text_column`); picklable, loads lazily.

    `threads`: CPUs to use in each worker process (default: what the engine reserved for it), spent as that
    many threads sharing one model session. Null texts give null, empty texts an empty list.
    """

    def __init__(self, model: Union[str, Path, None] = None, *, aggregation: str = "simple",
                 text_column: str = "text", output_column: str = "entities", threads: Optional[int] = None,
                 labels: Labels = None, merge: Merge = False, decode: str = "argmax", batch_size: int = 32):
        folder = model_folder(model)
        self.model = None if model is None else str(folder)
        # checked here, on the driver, not in an engine's worker: viterbi with a word-level strategy, unknown types
        self.options = Options.parse(aggregation=aggregation, decode=decode, labels=labels, merge=merge)
        span_options(entity_types(read_manifest(folder).labels), self.options.labels, self.options.merge, "space")
        for name, value in (("text_column", text_column), ("output_column", output_column)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a column name, not {value!r}")
        if text_column == output_column:
            raise ValueError(f"output_column must differ from text_column ({text_column!r}): the text is kept")
        self.text_column, self.output_column = text_column, output_column
        self.threads = None if threads is None else check_positive("threads", threads)
        self.batch_size = check_positive("batch_size", batch_size)
        self._ner: Optional[NER] = None

    # the entity options by name, as the predictor was given them (`options` holds them parsed)
    aggregation = property(lambda self: self.options.aggregation.value, doc="The aggregation strategy's name.")
    decode = property(lambda self: self.options.decode.value, doc="The decoder's name.")
    labels = property(lambda self: self.options.labels, doc="The entity types kept (None: every type).")
    merge = property(lambda self: self.options.merge, doc="The types whose split spans are merged (True: default).")

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_ner": None}  # the session stays in the process that loaded it

    @property
    def ner(self) -> NER:
        """This process's model, loaded on first use and shared by predictors with the same options."""
        if self._ner is None:
            workers = self.threads or engine_cpus()
            key = (self.model, self.options, workers)
            with _LOADING:
                if key not in _LOADED:
                    _LOADED[key] = NER.load(self.model, threads=1, workers=workers, options=self.options)
                self._ner = _LOADED[key]
        return self._ner

    def entities(self, texts: Iterable[Optional[str]]) -> list[Optional[list[Entity]]]:
        """Each text's entities in order; None for a null text."""
        texts = list(texts)
        found = iter(self.ner.pipe((t for t in texts if t is not None), batch_size=self.batch_size))
        return [None if t is None else next(found) for t in texts]

    def __call__(self, batch: Any) -> Any:
        """`batch` (Arrow, pandas or a dict of columns) with the entities column added."""
        kind = type(batch).__module__.split(".")[0]
        if kind == "pyarrow":
            return self._arrow(batch)
        if kind == "pandas":
            return self._pandas(batch)
        if isinstance(batch, dict):
            return self._columns(batch)
        raise TypeError(f"NERPredictor takes an Arrow table or record batch, a pandas DataFrame or a dict of "
                        f"columns, not {type(batch).__name__}")

    # ------------------------------------------------------------------ batch kinds

    def _arrow(self, batch: Any) -> Any:
        import pyarrow as pa

        found = self.entities(arrow_texts(batch, self.text_column, self.output_column))
        return batch.append_column(pa.field(self.output_column, entities_type()), to_arrow(found))

    def _pandas(self, frame: Any) -> Any:
        check_columns(list(frame.columns), self.text_column, self.output_column)
        column = frame[self.text_column]
        texts = [None if null else _text(i, t) for i, (t, null) in enumerate(zip(column.tolist(),
                                                                                 column.isna().tolist()))]
        out = frame.copy(deep=False)
        out[self.output_column] = [None if r is None else [entity_record(e) for e in r]
                                   for r in self.entities(texts)]
        return out

    def _columns(self, columns: dict) -> dict:
        check_columns(list(columns), self.text_column, self.output_column)
        texts = [None if _is_null(t) else _text(i, t) for i, t in enumerate(columns[self.text_column])]
        out = dict(columns)
        values = np.empty(len(texts), dtype=object)
        values[:] = [None if r is None else [entity_record(e) for e in r] for r in self.entities(texts)]
        out[self.output_column] = values
        return out


def check_columns(names: Sequence[str], text_column: str, output_column: str) -> None:
    """KeyError when the text column is missing, ValueError when the output column is taken."""
    if text_column not in names:
        raise KeyError(f"no column {text_column!r} (columns: {', '.join(map(str, names))}); name the column that "
                       "holds the texts (text_column, --text-column)")
    if output_column in names:
        raise ValueError(f"the table already has a column {output_column!r}; choose another output column "
                         "(output_column, --output-column)")


def arrow_texts(batch: Any, text_column: str, output_column: str) -> list[Optional[str]]:
    """The texts of an Arrow batch's text column (None for nulls), its columns and type checked."""
    import pyarrow as pa

    check_columns(batch.schema.names, text_column, output_column)
    kind = batch.schema.field(text_column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
            or getattr(pa.types, "is_string_view", lambda _: False)(kind)):
        raise TypeError(f"column {text_column!r} holds {kind}, not strings")
    return batch.column(text_column).to_pylist()


def entity_record(e: Entity) -> dict:
    """One entity as a table row's struct: label, start, end, score, text."""
    return {"label": e.label, "start": e.start, "end": e.end, "score": e.score, "text": e.text}


def to_arrow(rows: Sequence[Optional[list[Entity]]]) -> Any:
    """An entities column (`entities_type()`) from each row's entities, None for a null row."""
    import pyarrow as pa

    flat = [e for r in rows if r is not None for e in r]
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([0 if r is None else len(r) for r in rows])
    kind = entities_type()
    structs = pa.StructArray.from_arrays(
        [pa.array([e.label for e in flat], pa.string()),
         pa.array(np.fromiter((e.start for e in flat), np.int32, len(flat))),
         pa.array(np.fromiter((e.end for e in flat), np.int32, len(flat))),
         pa.array(np.fromiter((e.score for e in flat), np.float32, len(flat))),
         pa.array([encodable(e.text) for e in flat], pa.string())],  # Arrow strings are UTF-8: no lone surrogates
        fields=list(kind.value_type))
    nulls = pa.array([r is None for r in rows], pa.bool_()) if any(r is None for r in rows) else None
    return pa.ListArray.from_arrays(pa.array(offsets), structs, type=kind, mask=nulls)


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # a missing text may arrive as NaN


def _text(index: int, value: object) -> str:
    if isinstance(value, np.str_):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"row {index} of the text column is {type(value).__name__}, not str")
    return value
