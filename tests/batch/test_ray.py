"""Ray Data for real, in local mode (`ray.init(num_cpus=2)`, started once for this module)."""
from __future__ import annotations

import json

import pytest

from support.tables import entity_rows, table_texts
from support.extras import needs

ray = needs("ray")
pa = needs("pyarrow")
pq = needs("pyarrow.parquet")

from koner import ModelNotFoundError  # noqa: E402
from koner.cli import main  # noqa: E402
from koner.distributed import NERPredictor, entities_type  # noqa: E402
import koner.ray as koner_ray  # noqa: E402

TEXTS = table_texts()


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The 500 rows in a Parquet file of 8 row groups, as a pipeline would read them."""
    path = tmp_path_factory.mktemp("ray") / "in.parquet"
    table = pa.table({"id": list(range(len(TEXTS))), "text": TEXTS, "n": [i * 0.5 for i in range(len(TEXTS))]})
    pq.write_table(table, path, row_group_size=64)
    return path, table


def _by_id(table):
    return table.sort_by("id")


def test_annotate_matches_ner_batch_row_for_row(ner, source):
    path, table = source
    ds = koner_ray.annotate(ray.data.read_parquet(str(path)), batch_size=50)
    out = _by_id(pa.concat_tables(ray.get(ds.to_arrow_refs())))
    assert out.num_rows == 500
    assert out.schema.field("entities").type == entities_type()
    assert out.column("entities").to_pylist() == entity_rows(ner, TEXTS)
    assert out.select(["id", "text", "n"]).equals(table)


def test_map_batches_with_the_predictor_class(ner):
    """Ray's documented pattern for stateful classes: the class, its constructor kwargs, an actor pool."""
    ds = ray.data.from_items([{"id": i, "body": t} for i, t in enumerate(TEXTS[:60])])
    out = ds.map_batches(NERPredictor, fn_constructor_kwargs={"text_column": "body", "output_column": "ents"},
                         compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1, batch_size=16,
                         batch_format="pyarrow").take_all()
    rows = sorted(out, key=lambda r: r["id"])
    assert [r["ents"] for r in rows] == entity_rows(ner, TEXTS[:60])


def test_threads_follow_the_cpus_ray_reserved():
    from koner.system import engine_cpus

    @ray.remote(num_cpus=2)
    def two():
        return engine_cpus()

    @ray.remote(num_cpus=1)
    def one():
        return engine_cpus()

    assert ray.get([one.remote(), two.remote()]) == [1, 2]


def test_wrong_model_path_is_one_error_on_the_driver(tmp_path):
    ds = ray.data.from_items([{"text": "서울"}])
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        koner_ray.annotate(ds, model=tmp_path / "missing")
    with pytest.raises(ValueError, match="actors must be"):
        koner_ray.annotate(ds, actors=0)


def test_cli_engine_ray_writes_what_local_writes(tmp_path, source):
    path, _ = source
    rows = [json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(TEXTS[:120])]
    (tmp_path / "in.jsonl").write_text("\n".join(rows) + "\n", "utf-8")
    assert main(["ner-dataset", str(tmp_path / "in.jsonl"), str(tmp_path / "local.jsonl")]) == 0
    assert main(["ner-dataset", str(tmp_path / "in.jsonl"), str(tmp_path / "out"), "--engine", "ray"]) == 0
    assert ray.is_initialized()  # a Ray the caller started is used, not shut down
    got = [json.loads(line) for f in sorted((tmp_path / "out").glob("*.json*")) for line in
           f.read_text("utf-8").splitlines()]
    want = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text("utf-8").splitlines()]
    got.sort(key=lambda r: r["id"])
    assert len(got) == 120
    for g, w in zip(got, want, strict=True):
        assert g["id"] == w["id"] and g["text"] == w["text"]
        assert (g["entities"] is None) == (w["entities"] is None)
        for a, b in zip(g["entities"] or [], w["entities"] or [], strict=True):
            assert {**a, "score": pytest.approx(b["score"], abs=1e-6)} == b
    # Parquet out of the same engine keeps the Arrow types
    assert main(["ner-dataset", str(path), str(tmp_path / "pq"), "--engine", "ray"]) == 0
    table = pq.read_table(tmp_path / "pq")
    assert table.num_rows == 500 and table.schema.field("entities").type == entities_type()
