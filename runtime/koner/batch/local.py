"""The local engine of `koner ner-dataset`: every row of Parquet or JSONL files into one file, streamed.

It reads the files a batch at a time (`files.py`), adds the entities column with `NERPredictor` (so it answers
exactly as the Ray and Spark adapters do) and writes under a temporary name renamed at the end. JSONL output
keeps each row as it is; Parquet output has the union of every row's fields or every file's columns (found by
a first pass, before anything is written), and stores each lone surrogate as U+FFFD (counted).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .. import atomic, jsonl
from ..tokens import encodable
from .files import (ArrowRows, Counts, DatasetError, jsonl_batches, jsonl_schema, parquet_batches, parquet_schema,
                    require_pyarrow, to_utf8)
from .predictor import NERPredictor, entities_type, entity_record, to_arrow


def run_local(files: list[str], dst: str, predictor: NERPredictor, fmt_in: str, fmt_out: str, *, batch_rows: int = 1024,
              on_batch: Optional[Callable[[Counts], None]] = None) -> Counts:
    """Annotate every row of `files` into the file `dst` with `predictor`, in input order; returns the counts."""
    counts = Counts()
    schema = None
    if fmt_out == "parquet":  # the union of the rows' fields (or the files' columns), before anything is written
        schema = jsonl_schema(files, batch_rows) if fmt_in == "jsonl" else parquet_schema(files)
    with atomic.output_path(Path(dst)) as tmp:
        batches = parquet_batches(files, batch_rows) if fmt_in == "parquet" else jsonl_batches(files, batch_rows)
        writer = _ParquetOut(tmp, schema, predictor.output_column) if fmt_out == "parquet" else _JsonlOut(tmp)
        with writer:
            for batch in batches:
                texts = batch.texts(predictor.text_column, predictor.output_column)
                found = predictor.entities(texts)
                counts.replaced += writer.write(batch, predictor.output_column, found)
                counts.rows += len(texts)
                counts.texts += sum(t is not None for t in texts)
                counts.entities += sum(len(r) for r in found if r is not None)
                if on_batch is not None:
                    on_batch(counts)
    return counts


class _JsonlOut:
    """JSONL output: each input row with its entities (score as its float32 value prints)."""

    def __init__(self, path: Path):
        self.file = open(path, "w", encoding="utf-8")

    def __enter__(self) -> "_JsonlOut":
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def write(self, batch: Any, column: str, found: list) -> int:
        """Write a batch's rows with their entities; returns 0 (JSONL keeps every string as it is)."""
        for row, ents in zip(batch.records(), found):
            row = dict(row)
            row[column] = None if ents is None else [{**entity_record(e), "score": float(str(np.float32(e.score)))}
                                                      for e in ents]
            self.file.write(jsonl.dumps(row, default=str) + "\n")
        return 0


class _ParquetOut:
    """Parquet output: the input columns and the entities column, one row group per batch.

    `rows_schema`: for JSONL rows, the union schema `jsonl_schema` found, so every batch has every column.
    """

    def __init__(self, path: Path, rows_schema: Any = None, column: Optional[str] = None):
        self.path, self.writer, self.schema = path, None, None
        self.rows_schema, self.column = rows_schema, column

    def __enter__(self) -> "_ParquetOut":
        return self

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.close()
        elif exc[0] is None:  # no rows at all: still a valid Parquet file, with the input's columns and ours
            import pyarrow as pa
            import pyarrow.parquet as pq

            fields = list(self.rows_schema or []) + [pa.field(self.column or "entities", entities_type())]
            pq.write_table(pa.schema(fields).empty_table(), self.path)

    def write(self, batch: Any, column: str, found: list) -> int:
        """Write a batch's rows with their entities; returns how many strings lost lone surrogates to U+FFFD."""
        pa = require_pyarrow()
        import pyarrow.parquet as pq

        replaced = 0
        if isinstance(batch, ArrowRows):
            table = _conform(pa, pa.Table.from_batches([batch.batch]), self.rows_schema, batch.where)
        else:
            rows = list(batch.rows)
            for i in batch.odd:
                rows[i] = to_utf8(rows[i])
                replaced += _changed(batch.rows[i])
            replaced += sum(_changed(e.text) for i in batch.odd if found[i] for e in found[i])
            try:
                table = pa.Table.from_pylist(rows, schema=self.rows_schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # the first pass found one type per field
                raise DatasetError(f"{batch.where[0]} onwards: {exc}; write JSONL instead") from None
        table = table.append_column(pa.field(column, entities_type()), to_arrow(found))
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, self.schema)
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        self.writer.write_table(table)
        return replaced


def _changed(value: Any) -> int:
    """How many strings in `value` (nested) hold lone surrogates."""
    if isinstance(value, str):
        return int(encodable(value) is not value)
    if isinstance(value, dict):
        return sum(_changed(k) + _changed(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_changed(v) for v in value)
    return 0


def _conform(pa: Any, table: Any, schema: Any, where: str) -> Any:
    """`table` with every column of `schema`, in its order and types (a column a file lacks is null)."""
    if schema is None or table.schema == schema:
        return table
    columns = []
    for field in schema:
        if field.name in table.column_names:
            try:
                columns.append(table.column(field.name).cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise DatasetError(f"{where}: column {field.name!r} does not fit {field.type} ({exc})") from None
        else:
            columns.append(pa.nulls(len(table), field.type))
    return pa.Table.from_arrays(columns, schema=schema)
