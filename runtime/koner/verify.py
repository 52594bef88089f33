"""A model folder's files checked before they are used: inside the folder, the bytes export wrote, and a graph
that fits the manifest and the tokenizer.

- Every file koner opens is a plain name in the folder and, symlinks followed, stays in it; so does every
  external-data `location` in the graph (read by `onnxfile`, before onnxruntime opens anything).
- Each file koner.json records is checked against its size and sha256. A file's sha256 is remembered per
  (path, size, mtime, ctime, inode) in the user's cache (`filefacts`), so a folder is hashed once, not at every
  load; `koner check` hashes everything again.
- `max_length` must fit the graph's position table and every token id the tokenizer's word table.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .errors import (DamagedFileError, ModelFileError, OnnxModelError, OutsideFolderError, PositionTableError,
                     VocabularyMismatchError)
from .filefacts import FileFacts
from .manifest import MANIFEST_FILE, Manifest, inside, plain_name, sha256
from .onnxfile import ProtobufError, read_graph

# transformers model types whose position ids start after the padding index (fairseq's layout, padding id 1):
# their tables hold two rows more than the tokens a text may have (RoBERTa: 514 rows, 512 tokens)
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text", "roberta-prelayernorm")
_REEXPORT = "re-copy the whole model folder, or re-export it with `koner export`"


@dataclass(frozen=True)
class Graph:
    """What the runtime checks in a model file (see onnxfile.GraphInfo)."""

    locations: tuple[str, ...]
    word_rows: Optional[int]
    position_rows: Optional[int]


def position_offset(manifest: Manifest) -> int:
    """Rows of the position table before the first token's: as export recorded it, else 2 for RoBERTa-style
    models (padding id 1) and 0 for the others."""
    if manifest.position_offset is not None:
        return manifest.position_offset
    return 2 if manifest.architecture in OFFSET_POSITIONS else 0


class FolderFiles:
    """The files of one model folder, checked as they are asked for; `save` keeps what was learnt.

    `remember=False` hashes every file again, ignoring and leaving the cache (`koner check`).
    """

    def __init__(self, folder: Path, manifest: Manifest, *, remember: bool = True):
        self.folder = Path(folder)
        self.manifest = manifest
        self.facts = FileFacts() if remember else None
        self.verified: list[str] = []  # names whose size and sha256 matched koner.json
        self.checked = 0  # files `check_all` looked at

    def path(self, name: str, *, what: str = "file") -> Path:
        """`folder/name` once it is known to stay in the folder; its size and sha256 checked where recorded.

        A missing file is returned as it is: the code that opens it says what it is for.
        """
        path = self.folder / name
        if not plain_name(name):
            raise OutsideFolderError(path, f"the {what} {name!r} is not a plain file name in the model folder; koner "
                                           "reads only files inside it")
        if not inside(self.folder, name):
            raise OutsideFolderError(path, f"is a link to {os.path.realpath(path)}, outside the model folder; koner "
                                           "reads only files inside it: copy the real file into the folder")
        if not os.path.lexists(path):
            return path
        if not path.is_file():
            raise DamagedFileError(path, "is not a regular file; " + _REEXPORT)
        record = self.manifest.files.get(name)
        if record is not None:
            size = path.stat().st_size
            if size != record.bytes:
                raise DamagedFileError(path, f"has {size:,} bytes but koner.json records {record.bytes:,}: the file "
                                             f"is truncated or from another export; {_REEXPORT}")
            hashed: list[str] = []  # empty when the digest below was remembered, not computed now

            def digest_now() -> str:
                hashed.append(sha256(path))
                return hashed[-1]

            digest = self._fact(path, "sha256", digest_now)
            if digest != record.sha256 and not hashed and self.facts is not None:  # never refuse on a remembered one
                self.facts.forget(path)
                digest = self._fact(path, "sha256", lambda: sha256(path))
            if digest != record.sha256:
                raise DamagedFileError(path, "is not the file export wrote (its sha256 differs from the one "
                                             f"koner.json records): it is damaged or from another export; {_REEXPORT}")
            if name not in self.verified:
                self.verified.append(name)
        return path

    def model(self, name: str) -> tuple[Path, Optional[Graph]]:
        """The model file's path and graph, with every external-data file it names checked (None: no file)."""
        path = self.path(name, what="model_file")
        if not path.is_file():
            return path, None
        try:
            graph = _as_graph(self._fact(path, "graph", lambda: _graph_fact(path)))
            if graph is None:  # a cache entry this koner cannot read: read the file itself
                fact = _graph_fact(path)
                graph = Graph(tuple(fact["locations"]), fact["word_rows"], fact["position_rows"])
        except ProtobufError as exc:
            raise OnnxModelError(path, f"is not an ONNX model ({exc}); the file may be truncated: re-export or "
                                       "re-copy it") from None
        for location in graph.locations:
            if not plain_name(location) or not inside(self.folder, location):
                raise OutsideFolderError(path, f"keeps weights in {location!r}, outside the model folder; koner "
                                               "loads only weights beside the graph: re-export the model with "
                                               "`koner export`")
            data = self.path(location, what="weights file")
            if not data.exists():
                raise OnnxModelError(data, f"missing: {name} keeps its weights there; copy the whole model folder, "
                                           "or re-export it with `koner export`")
        return path, graph

    def check_fit(self, model: str, graph: Graph, tokenizer_path: Path, max_token_id: Callable[[], int]) -> int:
        """Check that max_length fits the position table of `model`'s graph and every token id its word table;
        returns the highest token id (`max_token_id()`, remembered per tokenizer file)."""
        m = self.manifest
        offset = position_offset(m)
        if graph.position_rows is not None and m.max_length + offset > graph.position_rows:
            most = graph.position_rows - offset
            raise PositionTableError(self.folder / MANIFEST_FILE,
                                     f"max_length is {m.max_length:,} but the position table of {model} holds "
                                     f"{most:,} tokens; set \"max_length\": {most} or re-export the model")
        top = self._fact(tokenizer_path, "max_token_id", max_token_id)
        if not isinstance(top, int) or isinstance(top, bool):  # a cache entry this koner did not write
            top = max_token_id()
        if graph.word_rows is not None and top >= graph.word_rows:
            raise VocabularyMismatchError(tokenizer_path, f"has token id {top:,} but the embedding table of {model} "
                                                          f"has {graph.word_rows:,} rows; use the tokenizer the "
                                                          "model was exported with")
        return top

    def check_all(self) -> list[ModelFileError]:
        """Check every file koner.json records and the model's weights (hashed again); the faults found."""
        faults: list[ModelFileError] = []
        names = list(dict.fromkeys([self.manifest.model_file, self.manifest.tokenizer_file,
                                    *([self.manifest.data_file] if self.manifest.data_file else []),
                                    *self.manifest.files]))
        self.checked = len(names)
        for name in names:
            try:
                if name == self.manifest.model_file:
                    self.model(name)
                else:
                    self.path(name)
                if not (self.folder / name).exists():
                    raise ModelFileError(self.folder / name, "missing; " + _REEXPORT)
                if name not in self.manifest.files:
                    raise ModelFileError(self.folder / name, "has no sha256 in koner.json, so it cannot be "
                                                             "verified; re-export the model with `koner export`")
            except ModelFileError as exc:
                if str(exc) not in map(str, faults):  # the model's weights file is checked with the model too
                    faults.append(exc)
        return faults

    def save(self) -> None:
        """Remember what was learnt about the files (silently not at all when the cache cannot be written)."""
        if self.facts is not None:
            self.facts.save()

    def _fact(self, path: Path, name: str, compute):
        return compute() if self.facts is None else self.facts.get(path, name, compute)


def _graph_fact(path: Path) -> dict:
    info = read_graph(path)
    return {"locations": sorted(info.locations), "word_rows": info.word_rows, "position_rows": info.position_rows}


def _as_graph(fact: object) -> Optional[Graph]:
    if not isinstance(fact, dict) or not isinstance(fact.get("locations"), list):
        return None
    rows = [fact.get("word_rows"), fact.get("position_rows")]
    if not all(r is None or (isinstance(r, int) and not isinstance(r, bool)) for r in rows):
        return None
    return Graph(tuple(str(x) for x in fact["locations"]), *rows)
