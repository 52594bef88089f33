"""Apache Spark for real, in local mode (`local[2]`, one session for this module; Java 17)."""
from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from support.tables import entity_rows, table_texts
from support.extras import needs

pyspark = needs("pyspark")
pa = needs("pyarrow")
pq = needs("pyarrow.parquet")

from koner import ModelNotFoundError  # noqa: E402
from koner.cli import main  # noqa: E402
from koner.distributed import entities_type  # noqa: E402
from koner.ner import DEFAULT_MODEL  # noqa: E402
import koner.spark as koner_spark  # noqa: E402

TEXTS = table_texts()


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this Python, which has koner
    session = (SparkSession.builder.master("local[2]").appName("koner tests").config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def frame(spark, tmp_path_factory):
    """The 500 rows in a Parquet file (one small file: one partition, as Spark reads it)."""
    path = tmp_path_factory.mktemp("spark") / "in.parquet"
    table = pa.table({"id": list(range(len(TEXTS))), "text": TEXTS, "tag": [f"t{i % 3}" for i in range(len(TEXTS))]})
    pq.write_table(table, path)
    return spark.read.parquet(str(path)), table


def test_annotate_matches_ner_batch_row_for_row(ner, frame):
    df, table = frame
    out = koner_spark.annotate(df, batch_size=100)
    assert out.rdd.getNumPartitions() == 2  # the one-partition file is spread over both cores
    got = out.toArrow()
    assert got.schema.field("entities").type == entities_type()
    assert got.column("id").to_pylist() == list(range(500))  # row order kept
    assert got.column("entities").to_pylist() == entity_rows(ner, TEXTS)
    assert got.select(["id", "text", "tag"]).equals(table)


def test_shipped_model_folder(ner, spark, frame, tmp_path):
    df, _ = frame
    copy = tmp_path / "my-ner-model"
    shutil.copytree(DEFAULT_MODEL, copy)
    out = koner_spark.annotate(df.limit(60), model=copy, output_column="ents", ship=True).toArrow()
    assert out.column("ents").to_pylist() == entity_rows(ner, TEXTS[:60])


def test_threads_follow_spark_task_cpus(spark):
    from koner.system import engine_cpus

    assert spark.sparkContext.parallelize([0, 1], 2).map(lambda _: engine_cpus()).collect() == [1, 1]


def test_bad_calls_are_one_error_on_the_driver(spark, frame, tmp_path):
    df, _ = frame
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        koner_spark.annotate(df, model=tmp_path / "missing")
    with pytest.raises(KeyError, match="no column 'body'"):
        koner_spark.annotate(df, text_column="body")
    with pytest.raises(TypeError, match="column 'id' is bigint, not string"):
        koner_spark.annotate(df, text_column="id")
    with pytest.raises(ValueError, match="already has a column 'tag'"):
        koner_spark.annotate(df, output_column="tag")


def test_the_earlier_call_form_still_works_and_names_the_new_one(ner, frame):
    """`annotate(df, text_col, out_col, model)`, koner.spark's first signature, answers as the new keyword form
    (the one koner.ray.annotate takes), with a DeprecationWarning that shows it."""
    df, _ = frame
    df = df.limit(20).withColumnRenamed("text", "body")
    want = entity_rows(ner, TEXTS[:20])
    with pytest.warns(DeprecationWarning, match=r"use annotate\(df, model=\.\.\., text_column=\.\.\., output_column="):
        old = koner_spark.annotate(df, "body", "ents", None).toArrow()
    with pytest.warns(DeprecationWarning):
        named = koner_spark.annotate(df, text_col="body", out_col="ents").toArrow()
    new = koner_spark.annotate(df, text_column="body", output_column="ents").toArrow()
    assert old.column("ents").to_pylist() == named.column("ents").to_pylist() == new.column("ents").to_pylist() == want
    with pytest.raises(TypeError, match="got both out_col .deprecated. and output_column"):
        koner_spark.annotate(df, "body", "ents", output_column="tags")


def test_cli_engine_spark_writes_what_local_writes(tmp_path):
    rows = [json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(TEXTS[190:210] + TEXTS[340:390])]
    (tmp_path / "in.jsonl").write_text("\n".join(rows) + "\n", "utf-8")
    assert main(["ner-dataset", str(tmp_path / "in.jsonl"), str(tmp_path / "local.jsonl")]) == 0
    assert main(["ner-dataset", str(tmp_path / "in.jsonl"), str(tmp_path / "out"), "--engine", "spark"]) == 0
    got = [json.loads(line) for f in sorted((tmp_path / "out").glob("part-*")) for line in
           f.read_text("utf-8").splitlines()]
    want = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text("utf-8").splitlines()]
    assert [g["id"] for g in got] == list(range(70))  # part files in input order
    for g, w in zip(got, want, strict=True):
        assert g.get("text") == w.get("text") and g["entities"] == w["entities"]
    assert any(g["entities"] is None for g in got) and any(g["entities"] == [] for g in got)
