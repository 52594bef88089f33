"""Outputs written whole or not at all: a temporary name beside the final one, renamed when the job is done.

A job that fails, is interrupted (Ctrl-C, SIGTERM) or crashes leaves no file under the final name and no
temporary file behind (short of SIGKILL). A new file or folder gets the permissions the umask gives, as a plain
`open()` or `mkdir` would (0644 / 0755 under umask 022), not the private 0600 / 0700 of `tempfile`; one that
replaces an existing file or folder keeps that one's permissions, and its owner and group where this process
may set them (as root), as writing into it with `open()` would.

An output is never written through a symlink: a symlink given as the output is refused (in a shared folder
such as /tmp, another user could have planted it to point at a file of yours, or at a FIFO of theirs), unless
it is one of /dev's or this process's own descriptors (`/dev/stdout`, `/dev/fd/63` of a shell's `>(...)`), or
leads to the file this process's standard output or error is open on (`--output /dev/stdout > out.jsonl`),
which are written to as they are. A FIFO, device or socket named directly is written to as it is.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator, Optional

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
    """A fresh temporary file (or folder) beside `final`, with the mode the umask gives; or, when it will replace
    an existing file (folder), that one's owner and group where this process may set them, and no more access
    for others than that one gives (`replace` gives it that one's mode exactly)."""
    parent = final.absolute().parent
    old = _existing(final, folder)
    if old is not None and not folder and not os.access(final, os.W_OK):
        raise OutputError(f"{final}: exists and you may not write it (permission denied); choose another name")
    try:
        if folder:
            path = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=parent))
        else:
            fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=parent)
            os.close(fd)
            path = Path(name)
        try:
            mode = (0o777 if folder else 0o666) & ~umask()
            if old is not None:
                _chown(path, old)
                mode = (mode & stat.S_IMODE(old.st_mode)) | (stat.S_IRWXU if folder else stat.S_IRUSR | stat.S_IWUSR)
            os.chmod(path, mode)
        except OSError:
            remove(path)
            raise
    except OSError as exc:
        raise OutputError(f"{parent}: cannot write {final.name} there ({exc.strerror or exc}); choose another "
                          "folder") from None
    return path


def _existing(final: Path, folder: bool) -> Optional[os.stat_result]:
    """The status of the file (or folder) under the final name, which the output will replace; None if none."""
    try:
        st = os.lstat(final)
    except OSError:
        return None
    return st if (stat.S_ISDIR(st.st_mode) if folder else stat.S_ISREG(st.st_mode)) else None


def _chown(path: Path, old: os.stat_result) -> None:
    """Give `path` the owner and group of `old` where this process may (as root); else at least its group."""
    mine = os.lstat(path)
    if (old.st_uid, old.st_gid) == (mine.st_uid, mine.st_gid):
        return
    for uid, gid in ((old.st_uid, old.st_gid), (-1, old.st_gid)):
        try:
            os.chown(path, uid, gid, follow_symlinks=False)
            return
        except PermissionError:
            continue


def _take_over(tmp: Path, final: Path) -> None:
    """Give a finished output the owner, group and mode of the file (folder) it replaces, as `open()` keeps them."""
    old = _existing(final, tmp.is_dir())
    if old is None:
        return
    _chown(tmp, old)  # before chmod: a chown clears set-user-id bits
    keep = stat.S_IMODE(old.st_mode)
    if stat.S_ISREG(old.st_mode):
        keep &= ~(stat.S_ISUID | stat.S_ISGID)  # an output is no program
    os.chmod(tmp, keep)


def replace(tmp: Path, final: Path) -> None:
    """Move a finished output (file or folder) to its final name, replacing what was there.

    A file replaces a file in one atomic rename. A folder first moves the old one aside, so an interrupt at any
    point leaves either the old output or the new one under the final name, never neither. A symlink under the
    final name is replaced itself, never what it points to.
    """
    _take_over(tmp, final)
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


def _own_descriptors(link: Path) -> bool:
    """True for a link no other user can plant: in /dev (root's) or among this process's own descriptors."""
    parent = os.path.realpath(os.path.dirname(os.path.abspath(link)))
    return parent == "/dev" or parent in ("/dev/fd", f"/proc/{os.getpid()}/fd", "/proc/self/fd")


def written_as_is(final: Path) -> bool:
    """True for an output written to directly rather than replaced: a FIFO, a device or a socket (a symlink to
    one too: `/dev/stdout`), or a symlink to the file this process's standard output or error is open on.

    OutputError for any other symlink: koner never writes through one (see the module's docstring).
    """
    if not final.is_symlink():
        return is_special(final)
    if is_special(final) and _own_descriptors(final):
        return True  # /dev/stdout, /dev/fd/N, /proc/self/fd/N: this process's own pipes and terminals
    try:
        target = os.stat(final)
    except OSError:
        target = None
    for fd in (1, 2):
        try:
            own = os.fstat(fd)
        except OSError:
            continue
        if target is not None and (own.st_dev, own.st_ino) == (target.st_dev, target.st_ino):
            return True
    raise OutputError(f"{final}: is a symlink; koner does not write through one (in a shared folder it may point "
                      "at a file you did not mean to replace): give the real file's path, or remove the link")


@contextlib.contextmanager
def output_path(final: Path, folder: bool = False) -> Iterator[Path]:
    """A temporary path for an output; moved to `final` when the block ends without an exception.

    A FIFO or a device (`/dev/stdout`) is written to directly, since it cannot be replaced; any other symlink
    is refused with OutputError.
    """
    if written_as_is(final):
        if folder:
            raise OutputError(f"{final}: is not a folder; give a folder name for the output")
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
    check(final, what)


def check(final: Path, what: str, folder: bool = False) -> None:
    """OutputError naming `what` when `final` cannot become an output file (a folder, with `folder`): a symlink,
    a folder where a file is asked for, a missing or unwritable folder to hold it."""
    if not folder and final.is_dir() and not final.is_symlink():
        raise OutputError(f"{final}: is a folder; give a file name for {what}")
    if written_as_is(final):
        if folder:
            raise OutputError(f"{final}: is not a folder; give a folder name for {what}")
        return  # a FIFO or a device is written to as it is
    parent = final.absolute().parent
    if not parent.is_dir():
        raise OutputError(f"{parent}: no such folder for {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{parent}: cannot write there ({what}); choose another folder")
    if not folder and _existing(final, folder) is not None and not os.access(final, os.W_OK):
        raise OutputError(f"{final}: exists and you may not write it (permission denied; {what}); choose another "
                          "name")
