"""NERPredictor (the engines' shared core) and `koner ner-dataset --engine local`."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from conftest import entity_rows, table_texts

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from koner import ModelNotFoundError  # noqa: E402
from koner.cli import main  # noqa: E402
from koner.distributed import NERPredictor, entities_type  # noqa: E402

TEXTS = table_texts()


@pytest.fixture(scope="module")
def expected(ner):
    return entity_rows(ner, TEXTS)


def _table(texts=TEXTS):
    return pa.table({"id": list(range(len(texts))), "text": texts, "source": [f"s{i % 7}" for i in range(len(texts))]})


def test_arrow_batch_gets_typed_entities_row_for_row(expected):
    predictor = pickle.loads(pickle.dumps(NERPredictor()))  # what an engine ships to its workers
    out = predictor(_table())
    assert out.schema.field("entities").type == entities_type()
    assert str(entities_type()) == ("list<item: struct<label: string, start: int32, end: int32, score: float, "
                                    "text: string>>")
    assert out.column("entities").to_pylist() == expected
    assert out.select(["id", "text", "source"]).equals(_table())
    rows = out.column("entities").to_pylist()
    assert rows[200] is None and rows[351] == [] and len(rows[499]) > 20


def test_pickled_predictor_holds_no_session():
    predictor = NERPredictor()
    predictor.ner  # noqa: B018
    state = pickle.dumps(predictor)
    assert len(state) < 2000 and pickle.loads(state)._ner is None


def test_pandas_and_column_dicts(ner):
    expected = entity_rows(ner, TEXTS, float32=False)  # Python objects keep NER's own scores
    predictor = NERPredictor()
    frame = _table(TEXTS[195:205]).to_pandas()
    out = predictor(frame)
    assert list(out.columns) == ["id", "text", "source", "entities"]
    assert out["entities"].tolist() == expected[195:205]
    assert "entities" not in frame.columns  # the caller's frame is left alone
    typed = frame.astype({"text": "string"})  # pandas' string dtype: a missing text is pd.NA
    assert predictor(typed)["entities"].tolist() == expected[195:205]
    columns = {"id": np.arange(10), "text": np.array(TEXTS[195:205], dtype=object)}
    got = predictor(columns)["entities"]
    assert list(got) == expected[195:205]


def test_record_batch_slices_and_other_options(ner):
    predictor = NERPredictor(text_column="body", output_column="ents", labels="PS,LC", aggregation="first")
    batch = pa.record_batch({"body": TEXTS[:40]})
    out = predictor(batch)
    assert out.schema.names == ["body", "ents"]
    want = [[(e.label, e.start, e.end) for e in r] for r in ner.batch(TEXTS[:40], labels="PS,LC", aggregation="first")]
    assert [[(d["label"], d["start"], d["end"]) for d in r] for r in out.column("ents").to_pylist()] == want
    assert {d["label"] for r in out.column("ents").to_pylist() for d in r} <= {"PS", "LC"}


def test_bad_batches_and_options_are_clear(tmp_path):
    predictor = NERPredictor()
    with pytest.raises(KeyError, match="no column 'text'"):
        predictor(pa.table({"body": ["서울"]}))
    with pytest.raises(ValueError, match="already has a column 'entities'"):
        predictor(pa.table({"text": ["서울"], "entities": [1]}))
    with pytest.raises(TypeError, match="holds int64, not strings"):
        predictor(pa.table({"text": [1, 2]}))
    with pytest.raises(TypeError, match="row 1 of the text column is int"):
        predictor({"text": np.array(["서울", 3], dtype=object)})
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        NERPredictor(tmp_path / "nope")
    with pytest.raises(ValueError, match="aggregation"):
        NERPredictor(aggregation="bogus")
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        NERPredictor(threads=0)
    with pytest.raises(ValueError, match="output_column must differ"):
        NERPredictor(output_column="text")


# ------------------------------------------------------------------ koner ner-dataset --engine local

def test_local_parquet_and_jsonl(tmp_path, expected, capsys):
    src = tmp_path / "in.parquet"
    pq.write_table(_table(), src, row_group_size=64)
    assert main(["ner-dataset", str(src), str(tmp_path / "out.parquet"), "--batch-size", "100"]) == 0
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.field("entities").type == entities_type()
    assert out.column("entities").to_pylist() == expected
    assert out.select(["id", "text", "source"]).equals(_table())
    assert "500 rows, 499 texts" in capsys.readouterr().err

    lines = [json.dumps(r, ensure_ascii=False) for r in _table().to_pylist()]
    lines[10] = json.dumps({"id": 10, "source": "no text key"}, ensure_ascii=False)  # a missing text is a null
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    assert main(["ner-dataset", str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 500 and rows[10] == {"id": 10, "source": "no text key", "entities": None}
    for i, (row, want) in enumerate(zip(rows, expected, strict=True)):
        if i == 10:
            continue
        assert row["id"] == i and row["text"] == TEXTS[i]
        assert row["entities"] == (None if want is None else
                                   [{**d, "score": pytest.approx(d["score"], abs=1e-6)} for d in want])

    # JSONL in, Parquet out
    assert main(["ner-dataset", str(tmp_path / "in.jsonl"), str(tmp_path / "j.parquet")]) == 0
    assert pq.read_table(tmp_path / "j.parquet").column("entities").to_pylist()[11:] == expected[11:]


def test_local_errors_write_nothing(tmp_path, capsys):
    good = tmp_path / "in.jsonl"
    good.write_text('{"text": "서울"}\n', "utf-8")
    cases = [
        ([str(tmp_path / "nope.parquet"), str(tmp_path / "o.parquet")], "no such file or folder"),
        ([str(good), str(tmp_path / "o.csv")], "writes .parquet or .jsonl, not .csv"),
        ([str(good), str(tmp_path / "o.jsonl"), "--model", str(tmp_path)], "koner.json: missing"),
        ([str(good), str(tmp_path / "o.jsonl"), "--engine", "spark", "--model", str(tmp_path / "x")],
         "no such model folder"),
        ([str(good), str(tmp_path / "no" / "o.jsonl")], "no such folder for the output"),
    ]
    for argv, message in cases:
        assert main(["ner-dataset", *argv]) == 2
        assert message in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "서울"}\n{"text": 5}\n', "utf-8")
    assert main(["ner-dataset", str(bad), str(tmp_path / "o.jsonl")]) == 2
    assert "bad.jsonl line 2: 'text' is int, not a string; nothing was written" in capsys.readouterr().err
    (tmp_path / "o.jsonl").write_text("keep", "utf-8")
    assert main(["ner-dataset", str(good), str(tmp_path / "o.jsonl")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "o.jsonl").read_text("utf-8") == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "in.jsonl", "o.jsonl"]  # no leftovers


def test_unreachable_ray_cluster_is_one_error_not_a_hang(tmp_path, capsys):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "in.jsonl").write_text('{"text": "서울"}\n', "utf-8")
    argv = ["ner-dataset", str(tmp_path / "in.jsonl"), str(tmp_path / "out"), "--engine", "ray",
            "--address", f"127.0.0.1:{port}"]
    assert main(argv) == 2
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_cli_process_one_line_error(tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), src)
    r = subprocess.run([sys.executable, "-m", "koner.cli", "ner-dataset", str(src), str(tmp_path / "o.parquet")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"koner: {src}: column 'text' holds int64, not strings; "
                                             "nothing was written"]


def test_import_koner_and_its_command_pull_no_engine():
    code = ("import sys, koner, koner.cli, koner.distributed, koner.ray, koner.spark; koner.cli.build_parser(); "
            "heavy = [m for m in ('ray', 'pyspark', 'pyarrow', 'pandas', 'torch') if m in sys.modules]; "
            "print(heavy); assert not heavy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
