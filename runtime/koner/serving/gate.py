"""Admission to inference slots: a bounded queue, deadlines, and no work for clients that left.

The event loop never runs inference: an admitted request's work runs on one of `slots` threads
sharing the one onnxruntime session. When every slot is busy, up to `max_queue` requests wait in
order; one more is refused at once (`Overloaded`, answered 503). A request past its deadline gets
`TimedOut` (504) and its work is told to stop (`cancel` is set) at its next check; its slot is free
again when the work returns. A request whose client is gone by its turn never starts.
"""
from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


class Overloaded(Exception):
    """Every slot is busy and the queue is full."""


class TimedOut(Exception):
    """The request's deadline passed before its answer was ready."""


class ClientGone(Exception):
    """The client disconnected before its turn came."""


class Gate:
    """`slots` inference threads and a queue of at most `max_queue` waiting requests."""

    def __init__(self, slots: int, max_queue: int):
        self.slots, self.max_queue = slots, max_queue
        self._free = slots
        self._waiting: deque[asyncio.Future] = deque()
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="koner-slot")

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return sum(not w.done() for w in self._waiting)

    @property
    def in_flight(self) -> int:
        """Slots busy with a request's work."""
        return self.slots - self._free

    async def run(self, work: Callable[[threading.Event], T], *, deadline: float,
                  gone: Callable[[], Awaitable[bool]]) -> T:
        """Run `work(cancel)` on a slot, by `deadline` (loop time); see the module doc for the outcomes."""
        loop = asyncio.get_running_loop()
        await self._acquire(loop, deadline)
        try:
            if await gone():
                raise ClientGone()
        except BaseException:
            self._release()
            raise
        cancel = threading.Event()
        job = loop.run_in_executor(self._pool, work, cancel)
        job.add_done_callback(lambda _: self._release())
        try:
            return await asyncio.wait_for(asyncio.shield(job), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            cancel.set()
            raise TimedOut() from None
        except asyncio.CancelledError:
            cancel.set()
            raise

    async def _acquire(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        if self.queued >= self.max_queue:
            raise Overloaded()
        turn = loop.create_future()
        self._waiting.append(turn)
        try:
            await asyncio.wait_for(turn, max(0.0, deadline - loop.time()))
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if turn.done() and not turn.cancelled():  # handed a slot just as the wait ended: give it back
                self._release()
            self._forget(turn)
            if isinstance(exc, asyncio.TimeoutError):
                raise TimedOut() from None
            raise

    def _forget(self, turn: asyncio.Future) -> None:
        try:
            self._waiting.remove(turn)
        except ValueError:
            pass

    def _release(self) -> None:
        """Hand the slot to the first request still waiting, or free it."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1

    def close(self) -> None:
        """Stop the slot threads once their current work is done."""
        self._pool.shutdown(wait=True)
