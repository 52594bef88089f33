"""`koner ner-dataset IN OUT`: add an entities column to every row of a Parquet or JSONL dataset.

`--engine local` streams the rows through one process's threads (`NER.pipe`) into one file; `ray` and
`spark` run the same predictor on a Ray Data actor pool or on Spark executors and write a folder of part
files. Everything that can be checked (input, output, model, options) is checked before an engine starts.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional

from .. import atomic, exitcodes
from ..aggregate import STRATEGIES
from ..dataset_files import (Counts, DatasetError, check_output, input_files, input_format, is_remote,
                            output_format, run_local)
from ..decode import DECODES
from ..distributed import NERPredictor
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


def _options(args) -> dict:
    return dict(model=args.model, aggregation=args.aggregation, labels=args.labels, merge=args.merge,
                decode=args.decode)


def _engine(args, files: list[str], fmt_in: str, fmt_out: str) -> None:
    final = Path(args.output)
    tmp = None if is_remote(args.output) else atomic.temp_path(final, folder=True)
    target = args.output if tmp is None else str(tmp)
    try:
        try:
            if args.engine == "ray":
                _ray(args, files, target, fmt_in, fmt_out)
            else:
                _spark(args, files, target, fmt_in, fmt_out)
        except (ImportError, KonerError, ValueError, TypeError, KeyError):
            raise
        except Exception as exc:  # an engine's own error: report its root cause in one line
            raise DatasetError(f"the {args.engine} job failed: {_root_cause(exc)}") from None
        if tmp is not None:
            atomic.replace(tmp, final)
    finally:
        if tmp is not None:
            atomic.remove(tmp)


def _ray(args, files: list[str], target: str, fmt_in: str, fmt_out: str) -> None:
    try:
        import ray
    except ImportError:
        from ..ray import RAY_HINT

        raise ImportError(RAY_HINT) from None
    from .. import ray as koner_ray

    started = not ray.is_initialized()  # a Ray this process already runs is used as it is
    if started:
        address = args.address or os.environ.get("RAY_ADDRESS")
        if address:
            _check_reachable(address)
        _quiet_ray()
        where = {"address": address} if address else {"include_dashboard": False}
        with _held_stderr():  # Ray's core announces its log level on stderr as it starts
            ray.init(**where, logging_level="ERROR", log_to_driver=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = sys.stderr.isatty()
        koner_ray.run_files(files, target, fmt_in, fmt_out, text_column=args.text_column,
                            output_column=args.output_column, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
                            threads=args.workers, batch_size=args.batch_size, **_options(args))
    finally:
        if started:
            ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail at once on a cluster address nothing answers at (Ray itself would keep retrying)."""
    import socket

    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto", a Ray Client URL (ray://...): Ray checks those itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise DatasetError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                           "`ray start --head`, or fix --address / RAY_ADDRESS") from None


def _quiet_ray() -> None:
    """Ray's own progress and notices off the command's stderr (they stay in Ray's session logs); its
    errors still reach the user as the job's exception."""
    import logging

    import ray.data  # noqa: F401 — configures the ray.data logger, whose console handler is quietened here

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.ERROR)


@contextlib.contextmanager
def _held_stderr() -> Iterator[None]:
    """Hold what native code writes to stderr inside the block; write it out only if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _spark(args, files: list[str], target: str, fmt_in: str, fmt_out: str) -> None:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        from ..spark import SPARK_HINT

        raise ImportError(SPARK_HINT) from None
    from .. import spark as koner_spark

    active = SparkSession.getActiveSession()  # a session this process already runs is used as it is
    spark = active or _start_spark(args.master)
    try:
        koner_spark.run_files(spark, files, target, fmt_in, fmt_out, text_col=args.text_column,
                              out_col=args.output_column, ship=args.ship_model, partitions=args.partitions,
                              threads=args.workers, batch_size=args.batch_size, **_options(args))
    finally:
        if active is None:
            spark.stop()


def _start_spark(master: Optional[str]) -> Any:
    """A SparkSession for this command: `master` (else spark-submit's or local[*]), quiet on stderr."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("koner ner-dataset")
    if master:
        builder = builder.master(master)
    if (master or "local").startswith("local"):  # local executors: this Python, which has koner
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.ui.enabled", "false")
    builder = builder.config("spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
    with _held_stderr():  # the JVM's start-up notices (log4j profile, hostname, native libraries)
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _message(exc: BaseException) -> str:
    return exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)


_CAUSE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$")


def _root_cause(exc: BaseException) -> str:
    """The innermost `SomeError: message` line of an engine's (often very long) error text."""
    last = None
    for line in str(exc).splitlines():
        m = _CAUSE.match(line.strip())
        if m and not m.group(1).startswith(("Py4J", "RayTask", "PythonException", "SparkException")):
            last = f"{m.group(1)}: {m.group(2)}"
    return last or (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
