"""Outputs written whole or not at all: a temporary name beside the final one, renamed when the job is done.

A job that fails, is interrupted (Ctrl-C, SIGTERM) or crashes leaves no file under the final name and no
temporary file behind (short of SIGKILL). Files and folders get the permissions the umask gives, as a plain
`open()` or `mkdir` would (0644 / 0755 under umask 022), not the private 0600 / 0700 of `tempfile`.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator

from .errors import OutputError


def umask() -> int:
    """This process's umask (read from /proc where it can be, so no other thread sees it changed)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def temp_path(final: Path, folder: bool = False) -> Path:
    """A fresh temporary file (or folder) beside `final`, with the mode the umask gives."""
    parent = final.absolute().parent
    try:
        if folder:
            path = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=parent))
            os.chmod(path, 0o777 & ~umask())
        else:
            fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=parent)
            os.fchmod(fd, 0o666 & ~umask())
            os.close(fd)
            path = Path(name)
    except OSError as exc:
        raise OutputError(f"{parent}: cannot write {final.name} there ({exc.strerror or exc}); choose another "
                          "folder") from None
    return path


def replace(tmp: Path, final: Path) -> None:
    """Move a finished output (file or folder) to its final name, replacing what was there.

    A file replaces a file in one atomic rename. A folder first moves the old one aside, so an interrupt at any
    point leaves either the old output or the new one under the final name, never neither.
    """
    if not (final.is_dir() and not final.is_symlink()):
        os.replace(tmp, final)
        return
    aside = temp_path(final, folder=True)
    os.replace(final, aside / "old")
    os.replace(tmp, final)
    remove(aside)


def remove(path: Path) -> None:
    """Remove a temporary file or folder if it is still there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def is_special(path: Path) -> bool:
    """True for an existing path that is neither a regular file nor a folder: a FIFO, a device, a socket."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def output_path(final: Path, folder: bool = False) -> Iterator[Path]:
    """A temporary path for an output; moved to `final` when the block ends without an exception.

    A symlink is followed (its target is replaced, the link kept); a FIFO or a device (`/dev/stdout`) is
    written to directly, since it cannot be replaced.
    """
    final = Path(os.path.realpath(final)) if final.is_symlink() else final
    if not folder and is_special(final):
        yield final
        return
    tmp = temp_path(final, folder)
    try:
        yield tmp
        replace(tmp, final)
    finally:
        remove(tmp)


@contextlib.contextmanager
def output_text(final: Path, errors: str = "strict") -> Iterator[IO[str]]:
    """A UTF-8 text file to write; it becomes `final` when the block ends without an exception."""
    with output_path(final) as tmp:
        with open(tmp, "w", encoding="utf-8", errors=errors) as out:
            yield out


def check_file(final: Path, what: str) -> None:
    """OutputError naming `what` (e.g. "--output") when `final` cannot become an output file."""
    if final.is_dir():
        raise OutputError(f"{final}: is a folder; give a file name for {what}")
    if final.is_symlink():
        final = Path(os.path.realpath(final))
    if is_special(final):
        return  # a FIFO or a device is written to as it is
    parent = final.absolute().parent
    if not parent.is_dir():
        raise OutputError(f"{parent}: no such folder for {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{parent}: cannot write there ({what}); choose another folder")
