"""NERPredictor (the engines' shared core) and `koner ner-dataset --engine local`."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from support.tables import entity_rows, table_texts
from support.extras import needs

pa = needs("pyarrow")
pq = needs("pyarrow.parquet")

from koner import NER, ModelNotFoundError  # noqa: E402
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

    # JSONL in, Parquet out: every column of every row, row 10 without its text
    assert main(["ner-dataset", str(tmp_path / "in.jsonl"), str(tmp_path / "j.parquet")]) == 0
    table = pq.read_table(tmp_path / "j.parquet")
    assert table.column_names == ["id", "text", "source", "entities"]
    want_rows = _table().to_pylist()
    want_rows[10] = {"id": 10, "text": None, "source": "no text key"}
    assert table.drop_columns(["entities"]).to_pylist() == want_rows
    assert table.column("entities").to_pylist() == expected[:10] + [None] + expected[11:]


def test_jsonl_to_parquet_keeps_every_field_of_every_row(tmp_path, capsys):
    rows = [{"id": 1, "text": "아이유 노래 검색해줘."}, {"id": 2, "text": "서울역으로 안내해줘.", "source": "web"},
            {"id": 3, "text": "부산 날씨 알려줘.", "meta": None}, {"id": 4, "text": "BTS 신곡 틀어줘.", "meta": {"lang": "ko"}},
            {"id": 5, "text": "에어컨 온도 3도 올려줘.", "score": 1}, {"id": 6, "text": "", "score": 0.5}]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    ner = NER.load()
    for batch in ("2", "1024"):  # a field null or absent throughout the first batch, filled later
        out = tmp_path / f"out-{batch}.parquet"
        assert main(["ner-dataset", str(src), str(out), "--batch-size", batch]) == 0
        table = pq.read_table(out)
        assert table.column_names == ["id", "text", "source", "meta", "score", "entities"]
        got = table.drop_columns(["entities"]).to_pylist()
        assert got == [{"id": r["id"], "text": r["text"], "source": r.get("source"), "meta": r.get("meta"),
                        "score": None if "score" not in r else float(r["score"])} for r in rows]
        assert table.column("entities").to_pylist() == entity_rows(ner, [r["text"] for r in rows])
    capsys.readouterr()


def test_a_field_of_two_types_is_one_error_naming_it_and_its_line(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "서울"}\n{"id": 2, "text": "부산"}\n{"id": "three", "text": "대구"}\n', "utf-8")
    assert main(["ner-dataset", str(src), str(tmp_path / "out.parquet"), "--batch-size", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{src} line 3: field 'id' is string here but int64 in earlier rows" in err
    assert "nothing was written" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    assert main(["ner-dataset", str(src), str(tmp_path / "out.jsonl")]) == 0  # JSONL keeps rows as they are
    capsys.readouterr()


def test_lone_surrogates_are_answered_in_both_formats(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "\\ud800 아이유 노래 검색해줘."}\n{"id": 2, "text": "서울역으로 안내해줘."}\n', "utf-8")
    text = "\ud800 아이유 노래 검색해줘."
    assert json.loads(src.read_text("utf-8").splitlines()[0])["text"] == text
    ner = NER.load()
    # JSONL out keeps the text exactly (as a \u escape), like `koner ner --jsonl` does for the same line
    assert main(["ner-dataset", str(src), str(tmp_path / "out.jsonl")]) == 0
    got = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert got[0]["text"] == text and [e["text"] for e in got[0]["entities"]] == [e.text for e in ner(text)]
    assert [e["text"] for e in got[0]["entities"]] == ["아이유"]
    cli = subprocess.run([sys.executable, "-m", "koner.cli", "ner", "--jsonl"], input=src.read_text("utf-8"),
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0 and json.loads(cli.stdout.splitlines()[0])["id"] == 1
    # Parquet strings are UTF-8: the lone surrogate becomes U+FFFD, offsets unchanged, and the job says so
    capsys.readouterr()
    assert main(["ner-dataset", str(src), str(tmp_path / "out.parquet")]) == 0
    assert "1 strings held lone surrogates" in capsys.readouterr().err
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert table[0]["text"] == "\ufffd 아이유 노래 검색해줘."
    assert [(e["start"], e["end"], e["text"]) for e in table[0]["entities"]] == [(2, 5, "아이유")]


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
    needs("ray")
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


def test_import_koner_and_its_command_pull_no_engine_view_or_integration_library():
    code = ("import sys, koner, koner.cli, koner.distributed, koner.ray, koner.spark, koner.render, koner.batch.local, "
            "koner.batch.jobs; "
            "koner.cli.build_parser(); heavy = [m for m in ('ray', 'pyspark', 'pyarrow', 'pandas', 'torch', 'spacy', "
            "'jinja2', 'selenium', 'mkdocs', 'starlette', 'uvicorn', 'schemathesis') if m in sys.modules]; "
            "print(heavy); assert not heavy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_parquet_edge_cases_are_kept_or_refused_in_one_line(tmp_path, capsys):
    # files of one folder with different columns: the union, nulls where a file lacks a column
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1], "text": ["아이유 노래 검색해줘."]}), folder / "a.parquet")
    pq.write_table(pa.table({"id": [2], "text": ["서울역으로 안내해줘."], "src": ["web"]}), folder / "b.parquet")
    assert main(["ner-dataset", str(folder), str(tmp_path / "u.parquet")]) == 0
    table = pq.read_table(tmp_path / "u.parquet")
    assert table.drop_columns(["entities"]).to_pylist() == [{"id": 1, "text": "아이유 노래 검색해줘.", "src": None},
                                                           {"id": 2, "text": "서울역으로 안내해줘.", "src": "web"}]
    # no rows: still the input's columns and the entities column
    pq.write_table(pa.table({"id": pa.array([], pa.int64()), "text": pa.array([], pa.string())}), tmp_path / "z.parquet")
    assert main(["ner-dataset", str(tmp_path / "z.parquet"), str(tmp_path / "z-out.parquet")]) == 0
    assert pq.read_table(tmp_path / "z-out.parquet").column_names == ["id", "text", "entities"]
    capsys.readouterr()
    # what Parquet cannot hold is one line, exit 2, before anything is written
    for name, row in (("big", '{"text": "서울", "n": 18446744073709551616}'), ("empty", '{"text": "서울", "m": {}}')):
        (tmp_path / f"{name}.jsonl").write_text(row + "\n", "utf-8")
        assert main(["ner-dataset", str(tmp_path / f"{name}.jsonl"), str(tmp_path / f"{name}.parquet")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "nothing was written" in err and "write JSONL instead" in err
        assert not (tmp_path / f"{name}.parquet").exists()


def test_raw_bytes_that_are_not_utf8_are_answered_as_koner_ner_answers_them(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes('{"id": 1, "text": "아이유 노래 검색해줘. '.encode() + b"\xff" + b'"}\n' +
                    '{"id": 2, "text": "서울역으로 안내해줘."}\n'.encode())
    assert main(["ner-dataset", str(src), str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert rows[0]["text"] == "아이유 노래 검색해줘. \udcff" and rows[0]["entities"][0]["text"] == "아이유"
    assert main(["ner-dataset", str(src), str(tmp_path / "out.parquet")]) == 0
    assert pq.read_table(tmp_path / "out.parquet").column("text").to_pylist()[0] == "아이유 노래 검색해줘. \ufffd"
    capsys.readouterr()


def test_the_predictor_refuses_bad_options_where_it_is_made():
    with pytest.raises(ValueError, match="'none' or 'simple'"):
        NERPredictor(aggregation="first", decode="viterbi")
    with pytest.raises(ValueError, match="XX"):
        NERPredictor(labels="PS,XX")
