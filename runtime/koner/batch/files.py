"""Dataset files for `koner ner-dataset`: formats, input listing, the output check, and the rows read a batch at a
time (Parquet / JSONL, streamed) for the local engine (`local.py`). JSONL needs nothing beyond koner; Parquet
needs pyarrow (`pip install 'koner[dataset]'`).

JSONL rows need not share their fields: JSONL output keeps each row as it is; Parquet output has the union of
every row's fields (a row without a field gets null), found by a first pass over the input, so a field whose
type conflicts between rows is one error naming the field and the line before anything is written. Strings
holding lone surrogates (valid JSON escapes such as "\\ud800", not valid Unicode) stay as they are in JSONL
(written as \\u escapes, see `koner.jsonl`); Parquet strings must be UTF-8, so there each such character
becomes U+FFFD (same length: offsets hold), and the job counts the strings it changed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from .. import atomic, jsonl, lines
from ..errors import KonerError, OutputError
from ..tokens import encodable
from .predictor import arrow_texts

SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
FORMATS = ("parquet", "jsonl")
PYARROW_HINT = "Parquet files need pyarrow: pip install 'koner[dataset]'"


class DatasetError(KonerError):
    """A dataset file or folder cannot be read or written as asked; the message says which and why."""


@dataclass
class Counts:
    """What a job did: rows read and written, texts answered (rows with a text), entities found."""

    rows: int = 0
    texts: int = 0
    entities: int = 0
    replaced: int = 0  # strings whose lone surrogates became U+FFFD (Parquet output)


def is_remote(path: str) -> bool:
    """True for an engine URI such as s3://bucket/key or hdfs://host/path."""
    return "://" in path and not path.startswith("file://")


def input_format(path: str, given: Optional[str] = None) -> str:
    """The format of an input file or folder: `given`, or its files' suffix."""
    if given:
        return given
    if is_remote(path) or not Path(path).is_dir():
        fmt = SUFFIXES.get(Path(path).suffix.lower())
        if fmt is None:
            raise DatasetError(f"{path}: cannot tell its format from the name; use .parquet or .jsonl, or --format")
        return fmt
    kinds = {SUFFIXES[p.suffix.lower()] for p in _data_files(Path(path))}
    if len(kinds) != 1:
        raise DatasetError(f"{path}: " + ("holds no .parquet or .jsonl files" if not kinds else
                                          "holds both Parquet and JSONL files; give one kind or --format"))
    return kinds.pop()


def output_format(path: str, input_fmt: str) -> str:
    """The output format: the output name's suffix, else (no suffix) the input's format."""
    suffix = Path(path).suffix.lower()
    if suffix and suffix not in SUFFIXES:
        raise DatasetError(f"{path}: koner writes .parquet or .jsonl, not {suffix}")
    return SUFFIXES.get(suffix, input_fmt)


def input_files(path: str, fmt: str) -> list[str]:
    """The files of an input: the file itself, or a folder's data files of that format in name order."""
    if is_remote(path):
        return [path]
    p = Path(path)
    if p.is_file():
        return [str(p)]
    if not p.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    files = [str(f) for f in _data_files(p) if SUFFIXES[f.suffix.lower()] == fmt]
    if not files:
        raise DatasetError(f"{path}: holds no {fmt} files")
    return files


def _data_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES
                  and not any(part.startswith((".", "_")) for part in f.relative_to(folder).parts))


def check_output(path: str, overwrite: bool, folder: bool = False) -> None:
    """Refuse an existing output unless `overwrite`, a symlink, and an output whose folder does not exist or
    cannot be written (`folder`: the output is a folder of part files, as the Ray and Spark engines write)."""
    if is_remote(path):
        return
    p = Path(path)
    try:
        atomic.check(p, "the output", folder=folder)
    except OutputError as exc:
        raise DatasetError(str(exc)) from None
    if p.exists() and not overwrite:
        raise DatasetError(f"{path}: already exists; remove it or pass --overwrite")


def jsonl_schema(files: list[str], batch_rows: int = 1024) -> Any:
    """The Arrow schema of JSONL rows: every field any row has, each with a type all its values fit
    (int and float: float; null: any). A field of two kinds (a string here, a number there) is a
    DatasetError naming the field and the first line that conflicts."""
    pa = require_pyarrow()
    schema = pa.schema([])
    for batch in jsonl_batches(files, batch_rows):
        rows = [to_utf8(r) if i in batch.odd else r for i, r in enumerate(batch.rows)]
        try:
            schema = pa.unify_schemas([schema, _batch_schema(pa, rows)], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            schema = _conflict(schema, rows, batch.where)
    for field in schema:
        if _has_empty_struct(pa, field.type):
            raise DatasetError(f"field {field.name!r} holds an empty object ({{}}), which Parquet "
                               "cannot store; write JSONL instead")
    return schema


def parquet_schema(files: list[str]) -> Any:
    """The schema of Parquet files together: every column of any file (types widened as for JSONL); a column
    of two kinds is a DatasetError naming it and the file, before anything is written."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    schema = pa.schema([])
    for name in files:
        try:
            own = pq.read_schema(name)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a file that is not Parquet
            raise DatasetError(f"{name}: not a Parquet file pyarrow can read ({exc})") from None
        try:
            schema = pa.unify_schemas([schema, own], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            clash = next((f.name for f in own if f.name in schema.names and f.type != schema.field(f.name).type),
                         None)
            what = f"column {clash!r} is {own.field(clash).type} here but {schema.field(clash).type} in earlier " \
                   "files" if clash else str(exc)
            raise DatasetError(f"{name}: {what}; one column holds one type") from None
    return schema


def _has_empty_struct(pa: Any, kind: Any) -> bool:
    if pa.types.is_struct(kind):
        return kind.num_fields == 0 or any(_has_empty_struct(pa, f.type) for f in kind)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_empty_struct(pa, kind.value_type)
    return False


def _batch_schema(pa: Any, rows: list[dict]) -> Any:
    """The schema of a batch of rows: every key of any row (in order of first appearance), each column's
    type inferred from all its values (pyarrow's own `from_pylist` would look at the first row's keys only)."""
    keys = dict.fromkeys(k for r in rows for k in r)
    return pa.schema([pa.field(k, pa.array([r.get(k) for r in rows]).type) for k in keys])


def _conflict(schema: Any, rows: list[dict], where: list[str]) -> Any:
    """Find the row and field of a batch whose type conflicts, one row at a time; raises DatasetError."""
    pa = require_pyarrow()
    for row, at in zip(rows, where):
        for name, value in row.items():
            try:
                kind = _batch_schema(pa, [{name: value}])
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
                raise DatasetError(f"{at}: field {name!r} holds a value Parquet cannot store ({exc}); "
                                   "write JSONL instead") from None
            try:
                schema = pa.unify_schemas([schema, kind], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                before = schema.field(name).type
                raise DatasetError(f"{at}: field {name!r} is {kind.field(name).type} here but {before} in earlier "
                                   "rows; one Parquet column holds one type: fix those rows or write JSONL "
                                   "instead") from None
    return schema  # pragma: no cover - the batch conflicted, so some row does


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a JSON escape of a lone surrogate, in a raw line


def to_utf8(value: Any) -> Any:
    """`value` with lone surrogates in its strings (keys too) as U+FFFD, nested values included."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {encodable(k): to_utf8(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_utf8(v) for v in value]
    return value


def require_pyarrow() -> Any:
    """The pyarrow module, or a DatasetError with the install hint."""
    try:
        import pyarrow as pa
    except ImportError:
        raise DatasetError(PYARROW_HINT) from None
    return pa


class JsonRows:
    """A batch of JSONL rows (dicts); `odd`: indices of the rows whose line escapes a lone surrogate."""

    def __init__(self, rows: list[dict], where: list[str], odd: list[int]):
        self.rows, self.where, self.odd = rows, where, odd

    def texts(self, column: str, output: str) -> list[Optional[str]]:
        """Each row's text (None where it has none); a row that already has `output` is refused."""
        out = []
        for row, where in zip(self.rows, self.where):
            if output in row:
                raise DatasetError(f"{where}: already has a field {output!r}; choose another --output-column")
            t = row.get(column)
            if t is not None and not isinstance(t, str):
                raise DatasetError(f"{where}: {column!r} is {type(t).__name__}, not a string")
            out.append(t)
        return out

    def records(self) -> list[dict]:
        """The rows as dicts."""
        return self.rows


class ArrowRows:
    """A batch of Parquet rows (an Arrow record batch)."""

    def __init__(self, batch: Any, where: str):
        self.batch, self.where = batch, where

    def texts(self, column: str, output: str) -> list[Optional[str]]:
        """The text column's values (None for nulls), its columns and type checked."""
        try:
            return arrow_texts(self.batch, column, output)
        except (KeyError, ValueError, TypeError) as exc:
            raise DatasetError(f"{self.where}: {exc.args[0]}") from None

    def records(self) -> list[dict]:
        """The rows as dicts."""
        return self.batch.to_pylist()


def jsonl_batches(files: list[str], size: int) -> Iterator[JsonRows]:
    """The rows of JSONL files, `size` at a time; a line that is not a JSON object is a DatasetError naming it."""
    rows: list[dict] = []
    where: list[str] = []
    odd: list[int] = []
    for name in files:
        try:
            source = lines.open_file(name)  # bad bytes: lone surrogates
        except OSError as exc:
            raise DatasetError(f"{name}: cannot read it ({exc.strerror})") from None
        with source:
            for rec in jsonl.read(source):
                if rec.error is not None:
                    raise DatasetError(f"{name} line {rec.number}: {rec.error}")
                if not isinstance(rec.value, dict):
                    raise DatasetError(f"{name} line {rec.number}: not a JSON object")
                line = rec.text
                if ("\\" in line and _SURROGATE_ESCAPE.search(line)) or encodable(line) is not line:
                    odd.append(len(rows))
                rows.append(rec.value)
                where.append(f"{name} line {rec.number}")
                if len(rows) == size:
                    yield JsonRows(rows, where, odd)
                    rows, where, odd = [], [], []
    if rows:
        yield JsonRows(rows, where, odd)


def parquet_batches(files: list[str], size: int) -> Iterator[ArrowRows]:
    """The rows of Parquet files, `size` at a time, as Arrow record batches."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(PYARROW_HINT) from None
    for name in files:
        try:
            source = pq.ParquetFile(name)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a file that is not Parquet
            raise DatasetError(f"{name}: not a Parquet file pyarrow can read ({exc})") from None
        for batch in source.iter_batches(batch_size=size):
            yield ArrowRows(batch, name)
