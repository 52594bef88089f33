"""Admission to inference slots: a bounded queue, deadlines, and no work for clients that left.

The event loop never runs inference: an admitted request's work goes straight into the queue of
`slots` threads sharing the one onnxruntime session, and a slot that finishes takes the next work
itself, without a round trip through the event loop. When `max_queue` requests already wait, one more
is refused at once (`Overloaded`, answered 503). A request past its deadline gets `TimedOut` (504);
one whose client disconnects gets `ClientGone`. Either way its work is told to stop (`cancel` is set):
work that has not started never starts, and running work stops at its next check by raising `Stopped`;
`on_cancel("queued" | "running")` counts each.
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable, Optional, TypeVar

T = TypeVar("T")


class Overloaded(Exception):
    """Every slot is busy and the queue is full."""


class TimedOut(Exception):
    """The request's deadline passed before its answer was ready."""


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


class Stopped(Exception):
    """Raised by running work that finds its `cancel` event set."""


class _Skipped(Exception):
    """The work was cancelled before a slot took it."""


class Gate:
    """`slots` inference threads and a queue of at most `max_queue` waiting requests."""

    def __init__(self, slots: int, max_queue: int, on_cancel: Optional[Callable[[str], None]] = None):
        self.slots, self.max_queue, self.on_cancel = slots, max_queue, on_cancel
        self._lock = threading.Lock()
        self._queued = 0  # admitted, not yet taken by a slot
        self._running = 0
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="koner-slot")

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return self._queued

    @property
    def in_flight(self) -> int:
        """Slots busy with a request's work."""
        return self._running

    async def run(self, work: Callable[[threading.Event], T], *, deadline: float,
                  disconnected: Callable[[], Awaitable[None]]) -> T:
        """Run `work(cancel)` on a slot by `deadline` (loop time); `disconnected()` returns when the client leaves."""
        with self._lock:  # admitted work not yet taken by a slot counts as waiting, even when a slot is idle
            if self._running + self._queued >= self.slots + self.max_queue:
                raise Overloaded()
            self._queued += 1
        cancel = threading.Event()

        def job() -> T:
            with self._lock:
                self._queued -= 1
                self._running += 1
            try:
                if cancel.is_set():
                    self._cancelled("queued")
                    raise _Skipped()
                try:
                    return work(cancel)
                except Stopped:
                    self._cancelled("running")
                    raise
            finally:
                with self._lock:
                    self._running -= 1

        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._pool, job)
        watch = asyncio.ensure_future(disconnected())
        try:
            done, _ = await asyncio.wait({fut, watch}, timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if fut in done:
                return fut.result()
            cancel.set()
            fut.add_done_callback(_quiet)
            if watch in done:
                raise ClientGone()
            raise TimedOut()
        except asyncio.CancelledError:
            cancel.set()
            fut.add_done_callback(_quiet)
            raise
        finally:
            watch.cancel()

    def _cancelled(self, stage: str) -> None:
        if self.on_cancel is not None:
            self.on_cancel(stage)

    def close(self) -> None:
        """Stop the slot threads once their current work is done."""
        self._pool.shutdown(wait=True)


def _quiet(fut: "asyncio.Future") -> None:
    """Collect the outcome of abandoned work, so it is never reported as unretrieved."""
    if not fut.cancelled():
        fut.exception()
