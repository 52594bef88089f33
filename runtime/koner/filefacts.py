"""Facts about a file's bytes (its sha256, what its graph holds) remembered across processes.

A fact is kept for one file as it is: its real path, size, mtime_ns, ctime_ns, inode and device. Any write,
copy, rename over it or `touch` changes one of them, and the fact is worked out again. The facts live in
`$XDG_CACHE_HOME/koner/file-facts.json` (`~/.cache/koner/...` by default); a cache that cannot be read or
written is ignored (the facts are worked out each time), never an error.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

FORMAT = 1
CACHE_FILE = "file-facts.json"
MAX_FILES = 256  # files remembered; the least recently checked are dropped first
MAX_BYTES = 1 << 20  # a cache file larger than this is not read


def cache_dir() -> Path:
    """Where koner keeps its cache: $XDG_CACHE_HOME/koner, or ~/.cache/koner."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "koner"


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


class FileFacts:
    """The cache: `get` a fact of a file (worked out by `compute` when unknown), then `save`."""

    def __init__(self, path: Optional[Path] = None):
        self.path = path if path is not None else cache_dir() / CACHE_FILE
        self._entries = self._read()
        self._changed = False

    def _read(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
            doc = json.loads(raw) if len(raw) <= MAX_BYTES else None
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("files"), dict):
            return {}
        return {k: v for k, v in doc["files"].items() if isinstance(v, dict) and isinstance(v.get("facts"), dict)}

    def get(self, file: Path, name: str, compute: Callable[[], Any]) -> Any:
        """Fact `name` of `file` as its bytes are now: remembered, or `compute()`d and remembered."""
        key = os.path.realpath(file)
        before = os.stat(key)
        entry = self._entries.get(key)
        if entry is not None and entry.get("id") == _identity(before) and name in entry["facts"]:
            return entry["facts"][name]
        value = compute()
        after = os.stat(key)
        if _identity(after) != _identity(before):  # changed while it was read: do not remember it
            return value
        if entry is None or entry.get("id") != _identity(after):
            entry = {"id": _identity(after), "facts": {}}
        entry["facts"][name] = value
        self._entries.pop(key, None)
        self._entries[key] = entry  # most recently checked last
        self._changed = True
        return value

    def forget(self, file: Path) -> None:
        """Drop what is remembered of `file`."""
        if self._entries.pop(os.path.realpath(file), None) is not None:
            self._changed = True

    def save(self) -> None:
        """Write the cache back if anything was learnt (atomically; silently not at all if it cannot be)."""
        if not self._changed:
            return
        from . import atomic

        keep = dict(list(self._entries.items())[-MAX_FILES:])
        text = json.dumps({"format": FORMAT, "files": keep}, ensure_ascii=False)
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = atomic.temp_path(self.path)
            tmp.write_text(text, "utf-8")
            atomic.replace(tmp, self.path)
            self._changed = False
        except Exception:  # a read-only home, a full disk, a path that is a folder: the cache is only a cache
            if tmp is not None:
                try:
                    atomic.remove(tmp)
                except OSError:
                    pass
