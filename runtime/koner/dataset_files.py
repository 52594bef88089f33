"""Dataset files for `koner ner-dataset`: formats, input listing, and the local engine (Parquet / JSONL, streamed).

The local engine reads a file a batch at a time, adds the entities column with `NERPredictor` (so it answers
exactly as the Ray and Spark adapters do) and writes under a temporary name renamed at the end. JSONL needs
nothing beyond koner; Parquet needs pyarrow (`pip install 'koner[dataset]'`).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from .distributed import NERPredictor, arrow_texts, entity_record
from .errors import KonerError

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


def check_output(path: str, overwrite: bool) -> None:
    """Refuse an existing output unless `overwrite`, and an output whose folder does not exist."""
    if is_remote(path):
        return
    p = Path(path)
    if p.exists() and not overwrite:
        raise DatasetError(f"{path}: already exists; remove it or pass --overwrite")
    if not p.absolute().parent.is_dir():
        raise DatasetError(f"{p.absolute().parent}: no such folder for the output")


def replace_output(tmp: Path, final: Path) -> None:
    """Move a finished output (file or folder) to its final name, removing what was there."""
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    elif final.exists():
        final.unlink()
    os.replace(tmp, final)


def temp_name(final: Path, folder: bool) -> Path:
    """A fresh temporary path beside `final` (a folder or a file)."""
    parent = final.absolute().parent
    if folder:
        return Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=parent))
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=parent)
    os.close(fd)
    return Path(name)


# ---------------------------------------------------------------------------------------------- local engine

def run_local(files: list[str], dst: str, predictor: NERPredictor, fmt_in: str, fmt_out: str, *, batch_rows: int = 1024,
              on_batch: Optional[Callable[[Counts], None]] = None) -> Counts:
    """Annotate every row of `files` into the file `dst` with `predictor`, in input order; returns the counts."""
    final = Path(dst)
    tmp = temp_name(final, folder=False)
    counts = Counts()
    try:
        batches = _parquet_batches(files, batch_rows) if fmt_in == "parquet" else _jsonl_batches(files, batch_rows)
        writer = _ParquetOut(tmp) if fmt_out == "parquet" else _JsonlOut(tmp)
        with writer:
            for batch in batches:
                texts = batch.texts(predictor.text_column, predictor.output_column)
                found = predictor.entities(texts)
                writer.write(batch, predictor.output_column, found)
                counts.rows += len(texts)
                counts.texts += sum(t is not None for t in texts)
                counts.entities += sum(len(r) for r in found if r is not None)
                if on_batch is not None:
                    on_batch(counts)
        replace_output(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return counts


class _Rows:
    """A batch of JSONL rows (dicts)."""

    def __init__(self, rows: list[dict], where: list[str]):
        self.rows, self.where = rows, where

    def texts(self, column: str, output: str) -> list[Optional[str]]:
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
        return self.rows


class _Arrow:
    """A batch of Parquet rows (an Arrow record batch)."""

    def __init__(self, batch: Any, where: str):
        self.batch, self.where = batch, where

    def texts(self, column: str, output: str) -> list[Optional[str]]:
        try:
            return arrow_texts(self.batch, column, output)
        except (KeyError, ValueError, TypeError) as exc:
            raise DatasetError(f"{self.where}: {exc.args[0]}") from None

    def records(self) -> list[dict]:
        return self.batch.to_pylist()


def _jsonl_batches(files: list[str], size: int) -> Iterator[_Rows]:
    rows: list[dict] = []
    where: list[str] = []
    for name in files:
        try:
            source = open(name, encoding="utf-8")
        except OSError as exc:
            raise DatasetError(f"{name}: cannot read it ({exc.strerror})") from None
        with source:
            try:
                for n, line in enumerate(source, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DatasetError(f"{name} line {n}: not valid JSON ({exc.msg})") from None
                    if not isinstance(row, dict):
                        raise DatasetError(f"{name} line {n}: not a JSON object")
                    rows.append(row)
                    where.append(f"{name} line {n}")
                    if len(rows) == size:
                        yield _Rows(rows, where)
                        rows, where = [], []
            except UnicodeDecodeError as exc:
                raise DatasetError(f"{name}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if rows:
        yield _Rows(rows, where)


def _parquet_batches(files: list[str], size: int) -> Iterator[_Arrow]:
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
            yield _Arrow(batch, name)


class _JsonlOut:
    """JSONL output: each input row with its entities (score as its float32 value prints)."""

    def __init__(self, path: Path):
        self.file = open(path, "w", encoding="utf-8")

    def __enter__(self) -> "_JsonlOut":
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def write(self, batch: Any, column: str, found: list) -> None:
        for row, ents in zip(batch.records(), found):
            row = dict(row)
            row[column] = None if ents is None else [{**entity_record(e), "score": float(str(np.float32(e.score)))}
                                                      for e in ents]
            self.file.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


class _ParquetOut:
    """Parquet output: the input columns and the entities column, one row group per batch."""

    def __init__(self, path: Path):
        self.path, self.writer, self.schema = path, None, None
        self.rows_schema = None  # JSONL rows: the columns the first batch gave, imposed on the rest

    def __enter__(self) -> "_ParquetOut":
        return self

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.close()
        elif exc[0] is None:  # no rows at all: still a valid (empty) Parquet file
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({}), self.path)

    def write(self, batch: Any, column: str, found: list) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise DatasetError(PYARROW_HINT) from None
        from .distributed import entities_type, to_arrow

        if isinstance(batch, _Arrow):
            table = pa.Table.from_batches([batch.batch])
        else:
            try:
                table = pa.Table.from_pylist(batch.rows, schema=self.rows_schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise DatasetError(f"{batch.where[0]} onwards: rows whose fields change type cannot go in one "
                                   f"Parquet file ({exc}); write JSONL instead") from None
            self.rows_schema = table.schema
        table = table.append_column(pa.field(column, entities_type()), to_arrow(found))
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, self.schema)
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        self.writer.write_table(table)
