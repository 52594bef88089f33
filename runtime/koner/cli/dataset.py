"""`koner ner-dataset IN OUT`: add an entities column to every row of a Parquet or JSONL dataset.

`--engine local` streams the rows through one process's threads (`NER.pipe`) into one file; `ray` and
`spark` run the same predictor on a Ray Data actor pool or on Spark executors and write a folder of part
files. Everything that can be checked (input, output, model, options) is checked before an engine starts.
"""
from __future__ import annotations

import sys
import time

from .. import exitcodes
from ..aggregate import STRATEGIES
from ..batch.files import Counts, check_output, input_files, input_format, output_format
from ..batch.jobs import write_folder
from ..batch.local import run_local
from ..batch.predictor import NERPredictor
from ..decode import DECODES
from ..errors import KonerError
from ..progress import Progress

ENGINES = ("local", "ray", "spark")


def register(sub) -> None:
    """Add the `ner-dataset` verb to the `koner` command's sub-parsers."""
    from .args import checked, positive_int, thread_count

    p = sub.add_parser("ner-dataset", help="add an entities column to a Parquet or JSONL dataset (local, Ray, Spark)",
                       description="Add each row's entities to a Parquet or JSONL dataset. local writes one file; "
                                   "ray and spark write a folder of part files.")
    p.add_argument("input", metavar="IN", help="a .parquet or .jsonl file, or a folder of them")
    p.add_argument("output", metavar="OUT", help="the output file (local) or folder (ray, spark); its suffix "
                                                 "(.parquet, .jsonl) picks the format, else the input's")
    p.add_argument("--engine", choices=ENGINES, default="local", help="local (default), ray or spark")
    p.add_argument("--text-column", default="text", help="the column holding the texts (text)")
    p.add_argument("--output-column", default="entities", help="the column to add (entities)")
    p.add_argument("--format", choices=["parquet", "jsonl"], help="the input's format, when its name does not say")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--model", help="model folder (default: the bundled stand-in)")
    p.add_argument("--aggregation", default="simple", choices=STRATEGIES)
    p.add_argument("--labels", help="only these entity types, e.g. PS,LC,OG")
    p.add_argument("--merge", action="store_true", help="join split same-type spans across whitespace")
    p.add_argument("--decode", choices=DECODES, default="argmax")
    p.add_argument("--workers", type=thread_count,
                   help="threads sharing the model in each process (local: usable CPUs; ray: the actor's CPUs; "
                        "spark: spark.task.cpus)")
    p.add_argument("--batch-size", type=positive_int, default=1024, help="rows handed over at a time (1024)")
    ray = p.add_argument_group("ray")
    ray.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    ray.add_argument("--actors", type=positive_int, help="actors, each with one model (default: see README)")
    ray.add_argument("--cpus-per-actor", type=checked(float, lambda x: x > 0, "a positive number"),
                     help="CPUs each actor reserves")
    spark = p.add_argument_group("spark")
    spark.add_argument("--master", help="Spark master URL (default: spark-submit's, else local[*])")
    spark.add_argument("--partitions", type=positive_int,
                       help="spread the rows over this many tasks (default: at least one per core)")
    spark.add_argument("--ship-model", action="store_true",
                       help="copy the model folder to the executors (SparkContext.addFile) instead of reading "
                            "it at the same path there")
    p.set_defaults(run=run_dataset)


def run_dataset(args) -> int:
    """Run the `ner-dataset` verb; returns the exit code."""
    try:
        fmt_in = input_format(args.input, args.format)
        files = input_files(args.input, fmt_in)
        fmt_out = output_format(args.output, fmt_in)
        check_output(args.output, args.overwrite, folder=args.engine != "local")
        predictor = NERPredictor(args.model, aggregation=args.aggregation, text_column=args.text_column,
                                 output_column=args.output_column, threads=args.workers, labels=args.labels,
                                 merge=args.merge, decode=args.decode)
    except (KonerError, ValueError) as exc:
        print(f"koner: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    start = time.perf_counter()
    try:
        if args.engine == "local":
            counts = _local(args, files, fmt_in, fmt_out, predictor)
            summary = f"{counts.rows:,} rows, {counts.texts:,} texts, {counts.entities:,} entities"
            if counts.replaced:
                summary += (f" ({counts.replaced:,} strings held lone surrogates, not valid Unicode; Parquet "
                            "stores each as U+FFFD)")
        else:
            _engine(args, files, fmt_in, fmt_out)
            summary = f"engine {args.engine}"
    except (KonerError, ValueError, TypeError, KeyError) as exc:
        print(f"koner: {_message(exc)}; nothing was written", file=sys.stderr)
        return exitcodes.USAGE
    except OSError as exc:  # a full disk, a file gone while it was read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"koner: {where}{exc.strerror or exc}; nothing was written", file=sys.stderr)
        return exitcodes.USAGE
    except ImportError as exc:
        print(f"koner: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    print(f"koner: {summary} in {time.perf_counter() - start:,.1f} s -> {args.output}", file=sys.stderr)
    return exitcodes.OK


def _local(args, files: list[str], fmt_in: str, fmt_out: str, predictor: NERPredictor) -> Counts:
    progress = Progress(sys.stderr.isatty())

    def on_batch(c: Counts) -> None:
        progress.add(c.texts - progress.texts, c.entities - progress.entities)

    counts = run_local(files, args.output, predictor, fmt_in, fmt_out, batch_rows=args.batch_size, on_batch=on_batch)
    progress.done()
    return counts


def _engine(args, files: list[str], fmt_in: str, fmt_out: str) -> None:
    """Run the Ray or Spark job, its folder written under a temporary name (`batch.jobs.write_folder`)."""
    options = dict(model=args.model, aggregation=args.aggregation, labels=args.labels, merge=args.merge,
                   decode=args.decode, text_column=args.text_column, output_column=args.output_column,
                   threads=args.workers, batch_size=args.batch_size)

    def ray_job(target: str) -> None:
        from ..batch import ray as koner_ray

        with koner_ray.session(args.address):
            koner_ray.run_files(files, target, fmt_in, fmt_out, actors=args.actors,
                                cpus_per_actor=args.cpus_per_actor, **options)

    def spark_job(target: str) -> None:
        from ..batch import spark as koner_spark

        with koner_spark.session(args.master) as spark:
            koner_spark.run_files(spark, files, target, fmt_in, fmt_out, ship=args.ship_model,
                                  partitions=args.partitions, **options)

    write_folder(args.output, args.engine, ray_job if args.engine == "ray" else spark_job)


def _message(exc: BaseException) -> str:
    return exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
