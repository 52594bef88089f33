"""Ordered, bounded parallel map on threads: the worker pool behind `NER.pipe` and long texts.

Threads, not processes: onnxruntime releases the GIL inside `session.run`, so threads sharing one
session scale across cores (2 threads with 1 intra-op thread each: 2.03x one thread on 2 cores) with
no second copy of the model. Results come back in input order; at most `ahead` items are taken from
the input beyond the one being returned, so a generator over a huge file is read lazily.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

from .errors import WorkerError

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int) -> Iterator[R]:
    """`fn(item)` for each item, computed by `workers` threads, yielded in input order.

    An exception in `fn` is raised here as WorkerError naming the item's position (the original is its
    cause); closing the generator or an interrupt cancels what has not started.
    """
    if workers <= 1:
        for i, item in enumerate(items):
            yield _call(fn, item, i)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="koner")
    pending: deque[tuple[int, Future]] = deque()
    it = iter(items)
    n = 0
    try:
        while True:
            while len(pending) <= ahead:
                try:
                    item = next(it)
                except StopIteration:
                    break
                pending.append((n, pool.submit(_call, fn, item, n)))
                n += 1
            if not pending:
                return
            _, fut = pending.popleft()
            yield fut.result()
    finally:
        for _, fut in pending:
            fut.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def _call(fn: Callable[[T], R], item: T, index: int) -> R:
    try:
        return fn(item)
    except (KeyboardInterrupt, SystemExit, WorkerError):
        raise
    except Exception as exc:
        raise WorkerError(index, exc) from exc
