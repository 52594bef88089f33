"""Ordered, bounded parallel map on threads: the worker pool behind `NER.pipe` and long texts.

Threads, not processes: onnxruntime releases the GIL inside `session.run`, so threads sharing one
session scale across cores (2 threads with 1 intra-op thread each: 2.03x one thread on 2 cores) with
no second copy of the model. Results come back in input order; at most `ahead` items are taken from
the input beyond the one being returned, so a generator over a huge file is read lazily.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int) -> Iterator[R]:
    """`fn(item)` for each item, computed by `workers` threads, yielded in input order.

    An exception in `fn` is raised here, unchanged, when its item's turn comes; an exception from `items`
    itself is raised after every result of the items before it. Closing the generator or an interrupt
    cancels what has not started. The caller names the failing input: only it knows what an item stands for.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    # imported here: a process that never runs two workers never loads it (with `logging`: 0.7 MB RSS)
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="koner")
    pending: deque[Future] = deque()
    it = iter(items)
    failed: Optional[BaseException] = None  # the input's own error, raised once what came before is out
    try:
        while True:
            while failed is None and len(pending) <= ahead:
                try:
                    item = next(it)
                except StopIteration:
                    break
                except Exception as exc:
                    failed = exc
                    break
                pending.append(pool.submit(fn, item))
            if not pending:
                if failed is not None:
                    raise failed
                return
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
