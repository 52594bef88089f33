"""Apache Spark: add an entities column to a DataFrame with `mapInArrow`, one model session per Python worker; and
the SparkSession a `koner ner-dataset --engine spark` job runs on (`session`).

Needs the `[spark]` extra (`pip install 'koner[spark]'`); `import koner` never imports PySpark. `annotate` takes
the same arguments as `koner.ray.annotate`, but for the engine's own (`ship`, `partitions`).
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from ..choices import check_positive
from ..options import Labels, Merge
from .jobs import held_stderr
from .predictor import ENTITY_FIELDS, NERPredictor, model_folder

SPARK_HINT = "koner.spark needs PySpark: pip install 'koner[spark]'"


def entities_schema() -> Any:
    """The Spark type of an entities column: array<struct<label, start, end, score, text>>."""
    from pyspark.sql import types as T

    kinds = {"string": T.StringType(), "int32": T.IntegerType(), "float32": T.FloatType()}
    return T.ArrayType(T.StructType([T.StructField(name, kinds[kind]) for name, kind in ENTITY_FIELDS]))


def annotate(df: Any, *legacy: Any, model: Union[str, Path, None] = None, text_column: str = "text",
             output_column: str = "entities", aggregation: str = "simple", decode: str = "argmax",
             labels: Labels = None, merge: Merge = False, threads: Optional[int] = None, batch_size: int = 1024,
             ship: bool = False, partitions: Optional[int] = None, text_col: Optional[str] = None,
             out_col: Optional[str] = None) -> Any:
    """`df` with each row's entities in `output_column` (lazy, like every DataFrame transformation).

    `model`: a folder every executor can read at that path, or, with `ship=True`, a folder on the driver
    that Spark copies to each executor (`SparkContext.addFile`). Each Python worker loads the model once and
    runs `threads` threads on it (default `spark.task.cpus`); it answers at most `batch_size` rows at a time.
    `partitions`: spread the rows over that many tasks first (None: over one task per core of the cluster
    when there are fewer partitions, as a small file of texts gives one); row order is kept either way.
    The earlier form `annotate(df, text_col, out_col, model)` (positional, or `text_col=` / `out_col=`) still
    works, with a DeprecationWarning.
    """
    try:
        from pyspark.sql import types as T
    except ImportError:
        raise ImportError(SPARK_HINT) from None
    if legacy or text_col is not None or out_col is not None:
        model, text_column, output_column = _earlier_form(legacy, text_col, out_col, model, text_column,
                                                          output_column)
    check_positive("batch_size", batch_size)
    if partitions is not None:
        check_positive("partitions", partitions)
    # checked here on the driver: a bad path or option is one error now, not a failed task on every executor
    predictor = NERPredictor(model, aggregation=aggregation, text_column=text_column, output_column=output_column,
                             threads=threads, labels=labels, merge=merge, decode=decode)
    fields = {f.name: f for f in df.schema.fields}
    if text_column not in fields:
        raise KeyError(f"no column {text_column!r} (columns: {', '.join(fields)}); set text_column to the text "
                       "column")
    if not isinstance(fields[text_column].dataType, (T.StringType, T.NullType)):
        raise TypeError(f"column {text_column!r} is {fields[text_column].dataType.simpleString()}, not string")
    if output_column in fields:
        raise ValueError(f"the DataFrame already has a column {output_column!r}; choose another output_column")
    shipped = None
    if ship and model is not None:
        folder = model_folder(model)
        df.sparkSession.sparkContext.addFile(str(folder.resolve()), recursive=True)
        shipped = folder.resolve().name
    schema = T.StructType(df.schema.fields + [T.StructField(output_column, entities_schema(), nullable=True)])
    df = spread(df, partitions)
    with warnings.catch_warnings():  # PySpark warns about pandas 3, which this Arrow-only path does not use
        warnings.simplefilter("ignore", FutureWarning)
        return df.mapInArrow(_Mapper(predictor, shipped, batch_size), schema)


def _earlier_form(legacy: tuple, text_col: Optional[str], out_col: Optional[str], model: Union[str, Path, None],
                  text_column: str, output_column: str) -> tuple[Union[str, Path, None], str, str]:
    """(model, text_column, output_column) from the earlier `annotate(df, text_col, out_col, model)` form, with a
    DeprecationWarning naming the new one; a TypeError when an argument is given twice."""
    if len(legacy) > 3:
        raise TypeError(f"annotate() takes the DataFrame and at most 3 more positional arguments (text_col, out_col, "
                        f"model: deprecated), not {len(legacy)}")
    old = dict(zip(("text_col", "out_col", "model"), legacy))
    for name, value in (("text_col", text_col), ("out_col", out_col)):
        if value is not None:
            if name in old:
                raise TypeError(f"annotate() got {name} both by position and by name")
            old[name] = value
    for name, new, given, default in (("text_col", "text_column", text_column, "text"),
                                      ("out_col", "output_column", output_column, "entities"),
                                      ("model", "model", model, None)):
        if name in old and given != default:
            raise TypeError(f"annotate() got both {name} (deprecated) and {new}; give {new} only")
    warnings.warn("koner.spark.annotate(df, text_col, out_col, model) is deprecated; use annotate(df, model=..., "
                  "text_column=..., output_column=...), as koner.ray.annotate takes", DeprecationWarning,
                  stacklevel=3)
    return old.get("model", model), old.get("text_col", text_column), old.get("out_col", output_column)


def spread(df: Any, partitions: Optional[int] = None) -> Any:
    """`df` over `partitions` partitions (None: at least Spark's default parallelism), in the same row order."""
    from pyspark.sql import functions as F

    try:
        have = df.rdd.getNumPartitions()
        want = partitions or max(have, df.sparkSession.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect: no RDDs; leave the partitioning to the user
        return df if partitions is None else df.repartition(partitions)
    if want == have:
        return df
    row = "__koner_row"
    return (df.withColumn(row, F.monotonically_increasing_id()).repartitionByRange(want, row)
            .sortWithinPartitions(row).drop(row))


class _Mapper:
    """The function each Spark task runs: Arrow record batches in, the same with entities out."""

    def __init__(self, predictor: NERPredictor, shipped: Optional[str], batch_size: int):
        self.predictor, self.shipped, self.batch_size = predictor, shipped, batch_size

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        predictor = self.predictor
        if self.shipped is not None:
            from pyspark import SparkFiles

            predictor.model = str(model_folder(Path(SparkFiles.get(self.shipped))))
        for batch in batches:
            for start in range(0, batch.num_rows, self.batch_size):
                yield predictor(batch.slice(start, self.batch_size))


def run_files(spark: Any, src: list[str], dst: str, fmt_in: str, fmt_out: str, **options: Any) -> None:
    """Read `src` (Parquet or JSONL files), annotate every row, write a folder of `fmt_out` part files at `dst`."""
    df = spark.read.parquet(*src) if fmt_in == "parquet" else spark.read.json(src)
    out = annotate(df, **options).write.mode("overwrite")
    if fmt_out == "parquet":
        out.parquet(dst)
    else:
        out.option("ignoreNullFields", "false").json(dst)


@contextlib.contextmanager
def session(master: Optional[str] = None) -> Iterator[Any]:
    """The SparkSession a job runs on: the one this process already runs, as it is, or one started here and
    stopped after it (at `master`, else spark-submit's or local[*]), quiet on stderr."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ImportError(SPARK_HINT) from None
    active = SparkSession.getActiveSession()  # a session this process already runs is used as it is
    spark = active or _start(master)
    try:
        yield spark
    finally:
        if active is None:
            spark.stop()


def _start(master: Optional[str]) -> Any:
    """A SparkSession for `koner ner-dataset`: `master` (else spark-submit's or local[*]), quiet on stderr."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("koner ner-dataset")
    if master:
        builder = builder.master(master)
    if (master or "local").startswith("local"):  # local executors: this Python, which has koner
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.ui.enabled", "false")
    builder = builder.config("spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
    with held_stderr():  # the JVM's start-up notices (log4j profile, hostname, native libraries)
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
