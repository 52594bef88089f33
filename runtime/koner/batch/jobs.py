"""What a Ray or Spark job of `koner ner-dataset` shares: its folder written under a temporary name, an engine's
error as one line, and the engines' start-up notices held off the command's stderr."""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .. import atomic
from ..errors import KonerError
from .files import DatasetError, is_remote


def write_folder(output: str, engine: str, job: Callable[[str], None]) -> None:
    """Run `job(target)`, which writes a folder of part files; a local `output` is written as a temporary folder
    beside it and renamed when the job is done (removed if it fails). An engine's own error becomes a
    DatasetError naming its root cause; koner's errors and ImportError pass unchanged."""
    final = Path(output)
    tmp = None if is_remote(output) else atomic.temp_path(final, folder=True)
    try:
        try:
            job(output if tmp is None else str(tmp))
        except (ImportError, KonerError, ValueError, TypeError, KeyError):
            raise
        except Exception as exc:  # an engine's own error: report its root cause in one line
            raise DatasetError(f"the {engine} job failed: {root_cause(exc)}") from None
        if tmp is not None:
            atomic.replace(tmp, final)
    finally:
        if tmp is not None:
            atomic.remove(tmp)


_CAUSE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$")


def root_cause(exc: BaseException) -> str:
    """The innermost `SomeError: message` line of an engine's (often very long) error text."""
    last = None
    for line in str(exc).splitlines():
        m = _CAUSE.match(line.strip())
        if m and not m.group(1).startswith(("Py4J", "RayTask", "PythonException", "SparkException")):
            last = f"{m.group(1)}: {m.group(2)}"
    return last or (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


@contextlib.contextmanager
def held_stderr() -> Iterator[None]:
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
