"""Apache Spark: add an entities column to a DataFrame with `mapInArrow`, one model session per Python worker.

Needs the `[spark]` extra (`pip install 'koner[spark]'`); `import koner` never imports PySpark.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from .choices import check_positive
from .distributed import ENTITY_FIELDS, NERPredictor, model_folder
from .ner import Labels, Merge

SPARK_HINT = "koner.spark needs PySpark: pip install 'koner[spark]'"


def entities_schema() -> Any:
    """The Spark type of an entities column: array<struct<label, start, end, score, text>>."""
    from pyspark.sql import types as T

    kinds = {"string": T.StringType(), "int32": T.IntegerType(), "float32": T.FloatType()}
    return T.ArrayType(T.StructType([T.StructField(name, kinds[kind]) for name, kind in ENTITY_FIELDS]))


def annotate(df: Any, text_col: str = "text", out_col: str = "entities", model: Union[str, Path, None] = None, *,
             ship: bool = False, partitions: Optional[int] = None, aggregation: str = "simple",
             threads: Optional[int] = None, batch_size: int = 1024,
             labels: Labels = None, merge: Merge = False, decode: str = "argmax") -> Any:
    """`df` with each row's entities in `out_col` (lazy, like every DataFrame transformation).

    `model`: a folder every executor can read at that path, or, with `ship=True`, a folder on the driver
    that Spark copies to each executor (`SparkContext.addFile`). Each Python worker loads the model once and
    runs `threads` threads on it (default `spark.task.cpus`); it answers at most `batch_size` rows at a time.
    `partitions`: spread the rows over that many tasks first (None: over one task per core of the cluster
    when there are fewer partitions, as a small file of texts gives one); row order is kept either way.
    """
    try:
        from pyspark.sql import types as T
    except ImportError:
        raise ImportError(SPARK_HINT) from None
    check_positive("batch_size", batch_size)
    if partitions is not None:
        check_positive("partitions", partitions)
    # checked here on the driver: a bad path or option is one error now, not a failed task on every executor
    predictor = NERPredictor(model, aggregation=aggregation, text_column=text_col, output_column=out_col,
                             threads=threads, labels=labels, merge=merge, decode=decode)
    fields = {f.name: f for f in df.schema.fields}
    if text_col not in fields:
        raise KeyError(f"no column {text_col!r} (columns: {', '.join(fields)}); set text_col to the text column")
    if not isinstance(fields[text_col].dataType, (T.StringType, T.NullType)):
        raise TypeError(f"column {text_col!r} is {fields[text_col].dataType.simpleString()}, not string")
    if out_col in fields:
        raise ValueError(f"the DataFrame already has a column {out_col!r}; choose another out_col")
    shipped = None
    if ship and model is not None:
        folder = model_folder(model)
        df.sparkSession.sparkContext.addFile(str(folder.resolve()), recursive=True)
        shipped = folder.resolve().name
    schema = T.StructType(df.schema.fields + [T.StructField(out_col, entities_schema(), nullable=True)])
    df = spread(df, partitions)
    with warnings.catch_warnings():  # PySpark warns about pandas 3, which this Arrow-only path does not use
        warnings.simplefilter("ignore", FutureWarning)
        return df.mapInArrow(_Mapper(predictor, shipped, batch_size), schema)


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
