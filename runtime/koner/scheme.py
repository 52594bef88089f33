"""Label schemes: what a model's label names mean, detected from them or named by the user.

- `IOB2` (`B-X`, `I-X`, `O`): every entity starts with `B-`. koner's bundled model.
- `IOB1` (`I-X`, `B-X`): entities start with `I-`; `B-` only starts an entity right after one of its type.
- `BIOES` (`B-`, `I-`, `E-`, `S-`; BMES's `M-` reads as `I-`) and `BILOU` (`B-`, `I-`, `L-`, `U-`): the
  last token and single-token entities have their own letter.
- `suffix` (`X-B`, `X-I`, Naver style): IOB2 with the letter after the type.
- `none`: labels without a position letter (`PER`, `LOC`, `O`): each run of one label is one entity.

Labels can also carry the letters as suffixes in the other schemes (`PER-S`). `detect` reads the scheme from
the label names (IOB1 cannot be told from IOB2 by names alone: pass it). Two things use a scheme:
`Tagging` says how labelled tokens group into entities, and `transitions` gives Viterbi the label sequences
the scheme allows.

Grouping `pipeline` (the default) reproduces the transformers pipeline exactly, whatever the scheme: it
knows only `B-`/`I-` prefixes; any other label counts as an inside label whose type is the whole label, so a
run of one such label is one group; the group is named by the label after its first `-` (so `S-PER` gives
`PER`, and `PER-B` gives `B`). Grouping `scheme` reads the labels by their scheme: `PER-B PER-I` is one `PER`
entity, `S-PER` one entity, `E-PER` closes one.
"""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from .choices import Choice


class Scheme(Choice):
    """A label scheme (see the module docstring)."""

    __option__ = "scheme"
    IOB2 = "IOB2"
    IOB1 = "IOB1"
    BIOES = "BIOES"
    BILOU = "BILOU"
    SUFFIX = "suffix"
    NONE = "none"


class Grouping(Choice):
    """How labelled tokens become entities: the transformers pipeline's rule, or the label scheme's."""

    __option__ = "grouping"
    PIPELINE = "pipeline"
    SCHEME = "scheme"


SCHEMES = tuple(s.value for s in Scheme)
GROUPINGS = tuple(g.value for g in Grouping)
LETTERS = "BIESLUM"
OUTSIDE = "O"
# each position letter's grouping role: begin, inside, end, single
_ROLES = {"B": "B", "I": "I", "M": "I", "E": "E", "L": "E", "S": "S", "U": "S"}  # BMES: M is BIOES's I


def _prefixed(label: str) -> bool:
    return len(label) > 2 and label[1] == "-" and label[0] in LETTERS


def _suffixed(label: str) -> bool:
    return len(label) > 2 and label[-2] == "-" and label[-1] in LETTERS


def split(label: str) -> tuple[str, str]:
    """(position letter, entity type) of a label: `B-PER` and `PER-B` -> ('B', 'PER'); `O` -> ('O', '');
    a label without a letter -> ('', label)."""
    if label == OUTSIDE:
        return OUTSIDE, ""
    if _prefixed(label):
        return label[0], label[2:]
    if _suffixed(label):
        return label[-1], label[:-2]
    return "", label


def detect(labels: Iterable[str]) -> Scheme:
    """The scheme of a label list, by its names (IOB2 for B-/I- prefixes: IOB1 looks the same)."""
    labels = [lab for lab in labels if lab != OUTSIDE]
    parts = [split(lab) for lab in labels]
    letters = {p for p, _ in parts if p}
    if not letters or sum(1 for p, _ in parts if p) < len(parts) / 2:
        return Scheme.NONE
    if letters & set("LU"):
        return Scheme.BILOU
    if letters & set("ES"):
        return Scheme.BIOES
    suffixed = sum(1 for lab in labels if _suffixed(lab) and not _prefixed(lab))
    return Scheme.SUFFIX if suffixed > len(labels) / 2 else Scheme.IOB2


def decoder(labels: tuple[str, ...], scheme: Scheme):
    """The Viterbi decoder of `scheme` for these labels: the fast IOB2 one, or the general one."""
    from .decode import BIO, Constrained

    if scheme is Scheme.IOB2:
        return BIO(labels)
    return Constrained(*transitions(labels, scheme))


def check(labels: Iterable[str], scheme: Scheme) -> None:
    """Raise ValueError when the label names do not carry `scheme`'s letters (a BIOES scheme on B-/I- labels
    would never let an entity end)."""
    labels = [lab for lab in labels if lab != OUTSIDE]
    letters = {split(lab)[0] for lab in labels} - {""}
    suffixed = any(_suffixed(lab) for lab in labels)
    prefixed = any(_prefixed(lab) for lab in labels)
    need = {Scheme.BIOES: set("ESM"), Scheme.BILOU: set("LU")}.get(scheme)
    problem = None
    if need and not letters & need:
        problem = f"has no {'/'.join(sorted(need))}- labels"
    elif scheme in (Scheme.IOB2, Scheme.IOB1) and not (prefixed and letters <= set("BI")):
        problem = "is not B-X / I-X labels"
    elif scheme is Scheme.SUFFIX and not suffixed:
        problem = "has no X-B / X-I labels"
    if problem:
        shown = ", ".join(labels[:6]) + (", ..." if len(labels) > 6 else "")
        raise ValueError(f"scheme {scheme.value}: the label list ({shown}) {problem}; leave the scheme out to "
                         f"read it from the labels (here: {detect(labels).value})")


class Tagging:
    """For each label: its grouping role (`B`, `I`, `E`, `S`) and type, and the entity name it gives."""

    def __init__(self, labels: tuple[str, ...], scheme: Scheme = Scheme.IOB2, grouping: Grouping = Grouping.PIPELINE):
        self.scheme, self.grouping = scheme, grouping
        self.role: dict[str, str] = {}
        self.type: dict[str, str] = {}
        self.name: dict[str, str] = {}
        for lab in labels:
            if grouping is Grouping.PIPELINE:  # transformers' get_tag and group_sub_entities
                if lab.startswith("B-") or lab.startswith("I-"):
                    self.role[lab], self.type[lab] = lab[0], lab[2:]
                else:
                    self.role[lab], self.type[lab] = "I", lab
                self.name[lab] = lab.split("-", 1)[-1]
                continue
            letter, kind = split(lab)
            if letter == OUTSIDE:
                self.role[lab], self.type[lab], self.name[lab] = "I", OUTSIDE, OUTSIDE
            elif not letter or scheme is Scheme.NONE:
                self.role[lab], self.type[lab], self.name[lab] = "I", lab, lab
            else:
                role = _ROLES[letter]
                if scheme is Scheme.IOB1 and role == "I":
                    role = "I1"  # an inside label that may also start an entity: handled by `joins`
                self.role[lab], self.type[lab], self.name[lab] = role, kind, kind

    def joins(self, prev: str, cur: str) -> bool:
        """Whether a token labelled `cur` right after one labelled `prev` continues its entity."""
        if self.type[cur] != self.type[prev]:
            return False
        r, p = self.role[cur], self.role[prev]
        if self.grouping is Grouping.PIPELINE:
            return r != "B"
        return r in ("I", "I1", "E") and p not in ("E", "S")

    def entity_types(self) -> tuple[str, ...]:
        """The entity names this grouping gives, in label order."""
        out: list[str] = []
        for lab, name in self.name.items():
            if not self.outside(lab) and name not in out:
                out.append(name)
        return tuple(out)

    def outside(self, label: str) -> bool:
        """Whether a group of this label is left out (the pipeline leaves out groups named `O`)."""
        return self.name[label] == OUTSIDE or label == OUTSIDE


def transitions(labels: tuple[str, ...], scheme: Scheme) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(allowed [prev, cur], may start [label], may end [label]) of the label sequences `scheme` allows."""
    n = len(labels)
    roles = [_ROLES.get(split(lab)[0], "") for lab in labels]
    types = [split(lab)[1] for lab in labels]
    allowed = np.ones((n, n), bool)
    start, end = np.ones(n, bool), np.ones(n, bool)
    if scheme is Scheme.NONE:
        return allowed, start, end
    inside = ("I", "E") if scheme in (Scheme.BIOES, Scheme.BILOU) else ("I",)
    if scheme is Scheme.IOB1:
        inside = ("B",)  # IOB1: B- only splits two adjacent entities of one type; I- may start one
    for c in range(n):
        for p in range(n):
            after_open = roles[p] in ("B", "I") and types[p] == types[c]
            if roles[c] in inside:
                allowed[p, c] = after_open
            elif scheme in (Scheme.BIOES, Scheme.BILOU):  # an open entity must go on or end first
                allowed[p, c] = roles[p] not in ("B", "I")
        start[c] = roles[c] not in inside
        if scheme in (Scheme.BIOES, Scheme.BILOU):
            end[c] = roles[c] not in ("B", "I")
    return allowed, start, end
