"""Ray Data: add an entities column to a Dataset on a pool of actors, each holding one model session; and the Ray
a `koner ner-dataset --engine ray` job runs on (`session`).

Needs the `[ray]` extra (`pip install 'koner[ray]'`); `import koner` never imports Ray. `annotate` takes the
same arguments as `koner.spark.annotate`, but for the engine's own (`actors`, `cpus_per_actor`).
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from ..options import Labels, Merge
from .files import DatasetError
from .jobs import held_stderr
from .predictor import NERPredictor

RAY_HINT = "koner.ray needs Ray Data: pip install 'koner[ray]'"


def annotate(ds: Any, *, model: Union[str, Path, None] = None, text_column: str = "text",
             output_column: str = "entities", aggregation: str = "simple", decode: str = "argmax",
             labels: Labels = None, merge: Merge = False, threads: Optional[int] = None, batch_size: int = 1024,
             actors: Union[int, tuple, None] = None, cpus_per_actor: Optional[float] = None) -> Any:
    """`ds` with each row's entities in `output_column` (lazy, like every Ray Data transform).

    Each actor loads the model once and runs `threads` threads sharing that session (default: the CPUs it
    reserves, `cpus_per_actor`, 1 by default). `actors`: a fixed pool size, a `(min, max)` range, or None:
    1 up to the cluster's CPUs / `cpus_per_actor`; on one machine with neither set, one actor with a thread
    per CPU that reserves all CPUs but one (Ray's read and write tasks need a free CPU, or they wait forever).
    """
    try:
        import ray
        from ray.data import ActorPoolStrategy
    except ImportError:
        raise ImportError(RAY_HINT) from None
    if cpus_per_actor is not None and (not isinstance(cpus_per_actor, (int, float)) or isinstance(cpus_per_actor, bool)
                                       or cpus_per_actor <= 0):
        raise ValueError(f"cpus_per_actor must be a positive number, not {cpus_per_actor!r}")
    pool, reserve, default_threads = _pool(ActorPoolStrategy, actors, cpus_per_actor, ray)
    # checked here on the driver, so that a bad path or option is one error now, not one per actor later
    predictor = NERPredictor(model, aggregation=aggregation, text_column=text_column, output_column=output_column,
                             threads=threads or default_threads, labels=labels, merge=merge, decode=decode)
    if output_column in (ds.columns(fetch_if_missing=False) or []):
        raise ValueError(f"the dataset already has a column {output_column!r}; choose another output_column")
    return ds.map_batches(actor_class(predictor), compute=pool, num_cpus=reserve, batch_size=batch_size,
                          batch_format="pyarrow", zero_copy_batch=True)


def actor_class(predictor: NERPredictor) -> type:
    """A callable class for `map_batches` that carries `predictor` and loads its model when the actor starts."""

    class NERActor:
        def __init__(self) -> None:
            self.predictor = predictor
            predictor.ner  # noqa: B018 — load now: a broken model fails the pool's start, once

        def __call__(self, batch: Any) -> Any:
            return self.predictor(batch)

    return NERActor


def _pool(strategy: Any, actors: Union[int, tuple, None], cpus: Optional[float],
          ray: Any) -> tuple[Any, float, int]:
    """The actor pool, the CPUs each actor reserves, and the threads each runs."""
    if actors is None and not ray.is_initialized():
        ray.init()  # the defaults are sized from the cluster
    if actors is None and cpus is None:
        if sum(1 for n in ray.nodes() if n.get("Alive")) <= 1:
            total = max(1, int(ray.cluster_resources().get("CPU", 1)))
            return strategy(size=1), total - 1, total
    cpus = 1 if cpus is None else cpus
    threads = max(1, round(cpus))
    if actors is None:
        total = int(ray.cluster_resources().get("CPU", 1))
        return strategy(min_size=1, max_size=max(1, int(total // cpus))), cpus, threads
    if (isinstance(actors, tuple) and len(actors) == 2 and all(isinstance(a, int) for a in actors)
            and 1 <= actors[0] <= actors[1]):
        return strategy(min_size=actors[0], max_size=actors[1]), cpus, threads
    if isinstance(actors, int) and not isinstance(actors, bool) and actors >= 1:
        return strategy(size=actors), cpus, threads
    raise ValueError(f"actors must be a positive integer, a (min, max) pair or None, not {actors!r}")


def run_files(src: list[str], dst: str, fmt_in: str, fmt_out: str, *, preserve_order: bool = True,
              **options: Any) -> None:
    """Read `src` (Parquet or JSONL files), annotate every row, write a folder of `fmt_out` files at `dst`."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = preserve_order
    ds = ray.data.read_parquet(src) if fmt_in == "parquet" else ray.data.read_json(src, lines=True)
    out = annotate(ds, **options)
    if fmt_out == "parquet":
        out.write_parquet(dst)
    else:
        out.write_json(dst, force_ascii=False)


@contextlib.contextmanager
def session(address: Optional[str] = None) -> Iterator[None]:
    """The Ray a job runs on: the one this process already runs, as it is, or one started here and shut down
    after it (at `address`, else $RAY_ADDRESS, else a local Ray), its start-up notices kept off stderr."""
    try:
        import ray
    except ImportError:
        raise ImportError(RAY_HINT) from None
    started = not ray.is_initialized()  # a Ray this process already runs is used as it is
    if started:
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            _check_reachable(address)
        _quiet_ray()
        where = {"address": address} if address else {"include_dashboard": False}
        with held_stderr():  # Ray's core announces its log level on stderr as it starts
            ray.init(**where, logging_level="ERROR", log_to_driver=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = sys.stderr.isatty()
        yield
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
