"""What every verb of the `koner` command shares: argparse value checks and the export extra's install hint."""
from __future__ import annotations

import argparse
from typing import Callable, TypeVar

from ..choices import MAX_THREADS

EXTRA_HINT = "this command needs the export extra: pip install 'koner[export]'"
T = TypeVar("T")


def checked(cast: Callable[[str], T], ok: Callable[[T], bool], what: str) -> Callable[[str], T]:
    """An argparse type: `cast(value)` when `ok` accepts it, else an error saying it must be `what`."""

    def parse(value: str) -> T:
        try:
            x = cast(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {value!r}") from None
        if not ok(x):
            raise argparse.ArgumentTypeError(f"must be {what}, not {value!r}")
        return x

    return parse


positive_int = checked(int, lambda n: n >= 1, "a positive integer")
# --threads, --workers: at most choices.MAX_THREADS
thread_count = checked(int, lambda n: 1 <= n <= MAX_THREADS, f"an integer from 1 to {MAX_THREADS}")
