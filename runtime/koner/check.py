"""Is a model folder intact, and does this CPU's int8 give the answers export recorded? (`koner check`)

`check_model` verifies every file koner.json records (size and sha256, hashed again; every file and every
external-data location inside the folder), then runs the folder's **check set** on this CPU: a few dozen
sentences of the parity corpus with the entity lists and token labels the model gave where it was exported,
and PyTorch's label of each token with its logit margin over the labels close to it. A token whose label here
differs from PyTorch's is a flip; it is **decisive** when PyTorch preferred its own label by at least
`TIE_MARGIN` logits (the parity gate's rule), a near-tie otherwise.

This module owns the check-set file (`CHECK_FILE` in the folder, listed in koner.json's `files`): export
writes it with `write_check_set`, `read_check_set` reads it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from . import exitcodes
from .errors import DamagedFileError, ModelFileError
from .manifest import CHECK_FILE, read_manifest

FORMAT = 1  # the check-set layout this koner reads and writes
# A flip is decisive when PyTorch preferred its own label over the int8 label by at least this many logits
# (koner_export.parity's gate uses the same number).
TIE_MARGIN = 0.1
# PyTorch's margin is recorded for every label within this many logits of its own; a label further away is a
# decisive flip whatever margin (up to this one) is asked for.
CLOSE_MARGIN = 1.0


@dataclass(frozen=True)
class CheckSentence:
    """One sentence of the check set and what export recorded for it."""

    text: str
    ids: tuple[int, ...]  # its token ids, special tokens included
    entities: tuple[tuple[str, int, int], ...]  # the int8 model's `simple` entities where it was exported
    int8: tuple[int, ...]  # the int8 model's label id per token, there
    pytorch: tuple[int, ...]  # PyTorch's label id per token
    close: dict = field(default_factory=dict)  # (token, label) -> PyTorch's margin for labels within CLOSE_MARGIN

    def margin(self, token: int, label: int) -> float:
        """How many logits PyTorch preferred its own label of `token` over `label` (inf: beyond CLOSE_MARGIN)."""
        if label == self.pytorch[token]:
            return 0.0
        return self.close.get((token, label), float("inf"))


@dataclass(frozen=True)
class CheckSet:
    """The check set of a folder: its sentences and where they were answered."""

    sentences: tuple[CheckSentence, ...]
    int8_path: str  # the int8 path (koner.cpu.int8_path) of the machine that exported the model
    close_margin: float = CLOSE_MARGIN


def write_check_set(path: Path, sentences: list[CheckSentence], *, int8_path: str, versions: dict) -> None:
    """Write a check set (export calls this; the folder's manifest then lists the file)."""
    doc = {"format": FORMAT, "int8_path": int8_path, "close_margin": CLOSE_MARGIN, "aggregation": "simple",
           "versions": versions,
           "sentences": [{"text": s.text, "ids": list(s.ids), "entities": [list(e) for e in s.entities],
                          "int8": list(s.int8), "pytorch": list(s.pytorch),
                          "close": [[t, lab, round(m, 4)] for (t, lab), m in sorted(s.close.items())]}
                         for s in sentences]}
    Path(path).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")


def read_check_set(path: Path, labels: int) -> CheckSet:
    """Read a check set whose label ids are below `labels`; DamagedFileError if it is not one."""
    try:
        doc = json.loads(Path(path).read_bytes())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a check set of this koner's format")
        sentences = tuple(_sentence(s, labels) for s in doc["sentences"])
        return CheckSet(sentences, str(doc.get("int8_path", "unknown")), float(doc.get("close_margin", CLOSE_MARGIN)))
    except (OSError, ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        raise DamagedFileError(path, f"is not a check set koner can read ({str(exc)[:120]}); re-export the model "
                                     "with `koner export`") from None


def _sentence(s: dict, labels: int) -> CheckSentence:
    n = len(s["ids"])
    ids = tuple(int(i) for i in s["ids"])
    int8, pytorch = tuple(int(i) for i in s["int8"]), tuple(int(i) for i in s["pytorch"])
    if len(int8) != n or len(pytorch) != n or not all(0 <= i < labels for i in int8 + pytorch):
        raise ValueError("a sentence's labels do not match its tokens")
    close = {(int(t), int(lab)): float(m) for t, lab, m in s["close"]}
    entities = tuple((str(lab), int(a), int(b)) for lab, a, b in s["entities"])
    return CheckSentence(str(s["text"]), ids, entities, int8, pytorch, close)


@dataclass
class Flip:
    """A token whose label on this CPU differs from PyTorch's."""

    sentence: int
    token: str
    start: int
    end: int
    pytorch: str
    here: str
    margin: float  # PyTorch's logit margin of its own label over this CPU's (inf: over CLOSE_MARGIN)
    exported: str  # the label the export machine gave

    def decisive(self, tie_margin: float = TIE_MARGIN) -> bool:
        """Whether PyTorch preferred its own label by at least `tie_margin` logits."""
        return self.margin >= tie_margin


@dataclass
class CheckReport:
    """What `check_model` found; `exit_code` is `koner check`'s."""

    folder: Path
    int8_path: str
    files: list[str] = field(default_factory=list)  # verified: size and sha256 as koner.json records
    checked: int = 0  # files looked at: every file koner.json records, the model, its weights and tokenizer
    damaged: list[str] = field(default_factory=list)  # one message per damaged, missing or outside file
    has_check_set: bool = False
    exported_on: Optional[str] = None  # the export machine's int8 path
    sentences: int = 0
    identical: int = 0  # sentences whose entity lists (label, start, end) equal the recorded ones
    tokenization_differs: int = 0  # sentences whose token ids differ from the recorded ones (not compared)
    flips: list[Flip] = field(default_factory=list)
    exported_decisive: int = 0  # decisive flips the export machine itself had on these sentences
    tie_margin: float = TIE_MARGIN

    @property
    def decisive(self) -> list[Flip]:
        """This CPU's decisive flips against PyTorch."""
        return [f for f in self.flips if f.decisive(self.tie_margin)]

    @property
    def new_decisive(self) -> list[Flip]:
        """Decisive flips the export machine did not have: this CPU chose another label where PyTorch was sure."""
        return [f for f in self.decisive if f.here != f.exported]

    @property
    def exit_code(self) -> int:
        """0 intact and no new decisive flip; 1 decisive flips (or other tokens); 2 a damaged folder."""
        if self.damaged:
            return exitcodes.USAGE
        if self.new_decisive or self.tokenization_differs:
            return exitcodes.FAILED
        return exitcodes.OK

    @property
    def failure(self) -> str:
        """Why the check did not pass, in a few words ("" when it passed)."""
        if self.damaged:
            return "the model folder is damaged"
        why = []
        if self.new_decisive:
            why.append("this CPU gives labels PyTorch was sure against")
        if self.tokenization_differs:
            why.append(f"this installation tokenizes {self.tokenization_differs} of {self.sentences} check sentences "
                       "differently from the export (another `tokenizers` version?)")
        return "; ".join(why)

    def to_dict(self) -> dict:
        """The report's figures as JSON values (what `koner serve --check` shows at /readyz)."""
        return {"passed": self.exit_code == exitcodes.OK, "exit_code": self.exit_code, "failure": self.failure,
                "int8_path": self.int8_path,
                "exported_on": self.exported_on, "files_verified": len(self.files), "files_checked": self.checked,
                "damaged": list(self.damaged), "check_set": self.has_check_set, "sentences": self.sentences,
                "identical_entity_lists": self.identical, "tokenization_differs": self.tokenization_differs,
                "decisive_flips": len(self.decisive), "new_decisive_flips": len(self.new_decisive),
                "near_tie_flips": len(self.flips) - len(self.decisive),
                "exported_decisive_flips": self.exported_decisive}

    def lines(self) -> list[str]:
        """The report as `koner check` prints it."""
        out = [f"model: {self.folder}", f"int8 path: {self.int8_path}" +
               (f" (the check set was recorded on {self.exported_on})" if self.exported_on else "")]
        out.append(f"files verified: {len(self.files)} of {self.checked} (size and sha256 as koner.json records, inside "
                   "the folder)" + (f": {', '.join(self.files)}" if self.files else ""))
        out += [f"damaged: {d}" for d in self.damaged]
        if self.damaged:
            out.append("result: the folder is damaged (exit 2); re-copy the whole model folder, or re-export it "
                       "with `koner export`")
            return out
        if not self.has_check_set:
            out.append("check set: none (the folder was exported before koner recorded one); only its files were "
                       "verified. Re-export the model with `koner export` to get one")
            out.append("result: ok, files only")
            return out
        out.append(f"identical entity lists: {self.identical} of {self.sentences}")
        if self.tokenization_differs:
            out.append(f"tokenization differs: {self.tokenization_differs} of {self.sentences} sentences (another "
                       "`tokenizers` version?); their answers were not compared")
        decisive, near = self.decisive, len(self.flips) - len(self.decisive)
        out.append(f"decisive flips: {len(decisive)} (tokens where PyTorch preferred its own label by >= "
                   f"{self.tie_margin:g} logits; the export machine had {self.exported_decisive}); "
                   f"near-tie flips: {near}")
        for f in self.new_decisive[:10]:
            margin = f"> {CLOSE_MARGIN:g}" if f.margin == float("inf") else f"{f.margin:.3f}"
            out.append(f"  sentence {f.sentence + 1}, token {f.token!r} [{f.start}:{f.end}]: PyTorch {f.pytorch}, "
                       f"here {f.here}, exported {f.exported} (PyTorch's margin {margin})")
        if self.exit_code == exitcodes.OK:
            out.append("result: ok" + ("" if self.identical == self.sentences else
                                       " (the differing lists come from near-ties, which any rounding may swap)"))
        else:
            out.append(f"result: {self.failure} (exit 1); see docs/cli.md (`koner check`) and the README's "
                       "'CPUs checked'")
        return out


def check_model(folder: Union[str, Path, None] = None, *, tie_margin: float = TIE_MARGIN) -> CheckReport:
    """Verify a model folder's files and run its check set on this CPU (None: the bundled model).

    A folder that is no koner folder at all (missing, no readable koner.json) raises its KonerError; damaged,
    missing or outside files and a model that does not load are listed in `damaged` instead, and no sentence
    runs.
    """
    from .cpu import int8_path
    from .errors import ModelNotFoundError
    from .ner import DEFAULT_MODEL, NER
    from .verify import FolderFiles

    path = Path(folder) if folder is not None else DEFAULT_MODEL
    if not path.is_dir():
        raise ModelNotFoundError.of(path)
    manifest = read_manifest(path)
    report = CheckReport(folder=path, int8_path=int8_path(), tie_margin=tie_margin)
    files = FolderFiles(path, manifest, remember=False)
    report.damaged = [str(exc) for exc in files.check_all()]
    report.files, report.checked = list(files.verified), files.checked
    check_file = manifest.check_file
    if report.damaged or check_file is None:
        return report
    try:
        check_set = read_check_set(path / check_file, len(manifest.labels))
    except ModelFileError as exc:
        report.damaged.append(str(exc))
        return report
    try:  # the load's own checks: max_length and token ids within the graph's tables, labels, onnxruntime
        ner = NER.load(path, threads=1, workers=1, aggregation="simple")
    except ModelFileError as exc:
        report.damaged.append(str(exc))
        return report
    report.has_check_set, report.exported_on = True, check_set.int8_path
    report.sentences = len(check_set.sentences)
    labels = ner.labels
    for k, s in enumerate(check_set.sentences):
        tokens = ner.tokenize(s.text)
        if tuple(int(i) for i in tokens.ids) != s.ids or len(s.ids) > ner.max_length:
            report.tokenization_differs += 1
            continue
        report.exported_decisive += sum(s.margin(int(i), s.int8[i]) >= tie_margin
                                        for i in np.flatnonzero(~tokens.special))
        ids = tokens.ids[None, :]
        here = ner.session.run(ids, np.ones_like(ids))[0].argmax(-1)
        for i in map(int, np.flatnonzero(~tokens.special & (here != np.asarray(s.pytorch)))):
            start, end = tokens.offsets[i]
            report.flips.append(Flip(k, tokens.strings[i], start, end, labels[s.pytorch[i]], labels[here[i]],
                                     s.margin(i, int(here[i])), labels[s.int8[i]]))
        found = tuple((e.label, e.start, e.end) for e in ner(s.text))
        report.identical += found == s.entities
    return report
