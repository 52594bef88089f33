"""Batch engines vs in-process koner on the same CPUs: texts/s, overhead ratio, start-up, identical entities.

One Parquet file of N real Korean lines (`stream.lines`, row groups of 1,000) is annotated into Parquet by:
  local   koner in this process (`koner ner-dataset --engine local`'s path: NER.pipe on 2 worker threads)
  ray     Ray Data, `ray.init(num_cpus=2)`, read_parquet -> koner.ray.annotate (defaults) -> write_parquet
  spark   Spark `local[2]`, read.parquet -> koner.spark.annotate (defaults) -> write.parquet
Each engine runs in a fresh process: start-up (model load for local, `ray.init` or the SparkSession) is timed
apart from the jobs; the job runs `--repeat` times (the first includes the engine's workers loading the model).
Every output is compared with local's, row for row by id. Local runs first and last, and each engine's ratio is
taken against the mean of the two, so that a machine whose speed drifts during the run skews the ratios less.

Usage: python benchmarks/scale_out.py [--lines 20000] [--runs local,ray,spark,local] [--repeat 2] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export"), str(ROOT / "benchmarks")]

from common import save_results  # noqa: E402
from koner_export.environment import machine, versions  # noqa: E402

RUNS = ("local", "ray", "spark", "local")  # local twice, before and after: the baseline is their mean


def child(run: str, src: Path, out: Path, repeat: int) -> dict:
    """One engine in this process: start-up, then `repeat` jobs from `src` into `out/<run>-<k>`."""
    start = time.perf_counter()
    if run == "local":
        from koner.batch.local import run_local
        from koner.batch.predictor import NERPredictor

        predictor = NERPredictor()
        predictor.ner  # noqa: B018
        job = lambda dst: run_local([str(src)], str(dst), predictor, "parquet", "parquet")  # noqa: E731
        stop = lambda: None  # noqa: E731
    elif run == "ray":
        import ray

        import koner.ray as koner_ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
        ray.data.DataContext.get_current().enable_progress_bars = False
        job = lambda dst: koner_ray.annotate(ray.data.read_parquet(str(src))).write_parquet(str(dst))  # noqa: E731
        stop = ray.shutdown
    else:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        import koner.spark as koner_spark

        spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        job = lambda dst: koner_spark.annotate(spark.read.parquet(str(src))).write.parquet(str(dst))  # noqa: E731
        stop = spark.stop
    result = {"run": run, "startup_s": round(time.perf_counter() - start, 2), "jobs_s": []}
    for k in range(repeat):
        t0 = time.perf_counter()
        job(out / f"{run}-{k}")
        result["jobs_s"].append(round(time.perf_counter() - t0, 2))
    stop()
    return result


def pipe_only(src: Path) -> float:
    """Texts/s of NER.pipe over the file's texts held in memory (no reading or writing), after a warm-up."""
    import pyarrow.parquet as pq

    from koner import NER

    texts = pq.read_table(src).column("text").to_pylist()
    ner = NER.load()
    ner.batch(texts[:200])
    t0 = time.perf_counter()
    for _ in ner.pipe(texts):
        pass
    return len(texts) / (time.perf_counter() - t0)


def same_entities(a: Path, b: Path) -> bool:
    """True when two outputs hold the same rows and entities, matched by id."""
    import pyarrow.parquet as pq

    ta, tb = (pq.read_table(p).sort_by("id") for p in (a, b))
    return ta.num_rows == tb.num_rows and ta.column("id").equals(tb.column("id")) and \
        ta.column("entities").to_pylist() == tb.column("entities").to_pylist()


def table(result: dict) -> str:
    n = result["lines"]
    locals_ = [r["jobs_s"] for r in result["runs"] if r["run"] == "local"]
    base = {"jobs_s": [sum(js) / len(js) for js in zip(*locals_)]} if locals_ else None
    out = [f"# Batch engines vs in-process koner — {result['time']}", "",
           f"{n:,} Korean lines in one Parquet file (row groups of 1,000) -> Parquet; 2 CPUs for every engine "
           f"({result['machine']['cpus']} × {result['machine'].get('cpu', '?')}, "
           f"Python {result['machine']['python']}). "
           "Start-up: loading the model (local), `ray.init`, or the SparkSession; job 1 includes the engine's "
           "workers starting and loading the model, job 2 is the same job again. \"vs local\": the mean of the "
           "local runs' times for that job divided by the engine's.", "",
           "| engine | start-up s | job 1 s | job 1 texts/s | vs local | job 2 s | job 2 texts/s | vs local | "
           "entities = local |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        cells = [r["run"], f"{r['startup_s']:.1f}"]
        for k, s in enumerate(r["jobs_s"][:2]):
            ratio = base["jobs_s"][k] / s if base else float("nan")
            cells += [f"{s:.1f}", f"{n / s:,.0f}", f"{ratio:.2f}"]
        cells.append({True: "yes", False: "NO", None: "-"}[r.get("identical")])
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "NER.pipe over the same texts in memory (no reading or writing): "
            f"{result['pipe_texts_s']:,.0f} texts/s",
            "", "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items())]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--dst", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.src, args.dst, args.repeat)))
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    from stream import lines

    result = {"machine": machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "lines": args.lines, "runs": [],
              "versions": versions(("onnxruntime", "tokenizers", "numpy", "pyarrow", "ray", "pyspark"))}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in.parquet"
        texts = lines(args.lines)
        pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), src, row_group_size=1000)
        for i, run in enumerate(args.runs.split(",")):
            print(f"[scale-out] {run}", file=sys.stderr, flush=True)
            dst = tmp / f"run{i}"
            dst.mkdir()
            res = subprocess.run([sys.executable, __file__, "--child", run, "--src", str(src), "--dst", str(dst),
                                  "--repeat", str(args.repeat)], capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(f"{run} failed: {res.stderr[-3000:]}")
            r = json.loads(res.stdout.splitlines()[-1])
            first = tmp / "run0" / "local-0"
            if i > 0:
                r["identical"] = all(same_entities(first, dst / f"{run}-{k}") for k in range(args.repeat))
            print(f"[scale-out] {json.dumps(r)}", file=sys.stderr, flush=True)
            result["runs"].append(r)
        print("[scale-out] pipe", file=sys.stderr, flush=True)
        result["pipe_texts_s"] = round(pipe_only(src), 1)
    save_results(args.out, "scale-out", result, table(result))


if __name__ == "__main__":
    main()
