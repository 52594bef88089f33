"""Entities -> the entities a user asked for: a type filter and an opt-in merge of split spans.

Both work on an iterator of entities in text order (a long text's stream too) and hold at most one
entity back. The merge joins same-type entities that touch or are separated only by whitespace
(`across="space"`), or also by `·` or `-` (`across="punct"`); the merged score is the mean of the
parts weighted by their length. It is off by default, so the default output stays the transformers
pipeline's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Union

from .entity import Entity

# The types whose exact-span F1 merging raised by at least a point on the stand-in's 500 held-out konec
# sentences (benchmarks/merge_eval.py): PS +1.7, QT +4.6, TI +4.3. It lowered LC (-10.1: the gold set
# tags "서울 서초구" as two places), EV, DT, OG and AF, so `merge=True` leaves those alone.
MERGE_TAGS: frozenset = frozenset({"PS", "QT", "TI"})
JOINERS = {"space": "", "punct": "·-"}


@dataclass(frozen=True)
class SpanOptions:
    """Which entity types to keep, and which to merge across what."""

    keep: Optional[frozenset] = None  # None: every type
    merge: frozenset = frozenset()  # types whose split spans are merged
    across: str = "space"


def entity_types(labels: Iterable[str]) -> tuple[str, ...]:
    """The entity types (PS, LC, ...) of a model's BIO labels, in label order."""
    out: list[str] = []
    for lab in labels:
        t = lab.split("-", 1)[-1]
        if lab != "O" and t not in out:
            out.append(t)
    return tuple(out)


def span_options(types: tuple[str, ...], labels: Union[None, str, Iterable[str]] = None,
                 merge: Union[bool, str, Iterable[str], None] = False, across: str = "space") -> SpanOptions:
    """Validate the user's choices against the model's entity types."""
    keep = None
    if labels is not None:
        keep = frozenset(_types(labels, types, "labels"))
    if merge is True:
        tags = frozenset(MERGE_TAGS) & frozenset(types)
    elif merge in (False, None):
        tags = frozenset()
    else:
        tags = frozenset(_types(merge, types, "merge", allow_empty=True))
    if across not in JOINERS:
        raise ValueError(f"merge_across must be one of {', '.join(JOINERS)}, not {across!r}")
    return SpanOptions(keep, tags, across)


def _types(value: Union[str, Iterable[str]], types: tuple[str, ...], what: str,
           allow_empty: bool = False) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    bad = [v for v in items if v not in types]
    if bad or not (items or allow_empty):
        raise ValueError(f"{what}: unknown entity type(s) {', '.join(map(repr, bad)) or '(none given)'}; "
                         f"this model knows {', '.join(types)}")
    return items


def refine(ents: Iterable[Entity], text: str, opts: SpanOptions) -> Iterator[Entity]:
    """`ents` filtered by type and with split spans merged, as `opts` says."""
    if opts.keep is not None:
        ents = (e for e in ents if e.label in opts.keep)
    if opts.merge:
        ents = _merge(ents, text, opts.merge, JOINERS[opts.across])
    return iter(ents)


def pipeline_overlaps(found: list[Entity]) -> list[Entity]:
    """The transformers pipeline's rule for the entities of overlapping chunks of a long text (`stride`): of
    the entities that overlap the longer (on a tie, the higher score) kept, in text order."""
    if not found:
        return []
    found = sorted(found, key=lambda e: e.start)  # stable, as the pipeline's sorted()
    out: list[Entity] = []
    prev = found[0]
    for e in found:  # the pipeline's loop, literally: it visits the first entity too (an empty one twice)
        if prev.start <= e.start < prev.end:
            if (e.end - e.start) > (prev.end - prev.start) or \
                    ((e.end - e.start) == (prev.end - prev.start) and e.score > prev.score):
                prev = e
        else:
            out.append(prev)
            prev = e
    out.append(prev)
    return out


def _merge(ents: Iterable[Entity], text: str, tags: frozenset, joiners: str) -> Iterator[Entity]:
    run: list[Entity] = []
    for e in ents:
        if run and e.label == run[-1].label and e.label in tags and e.index is None and \
                _joinable(text[run[-1].end:e.start], joiners):
            run.append(e)
            continue
        if run:
            yield _joined(run, text)
        run = [e]
    if run:
        yield _joined(run, text)


def _joinable(gap: str, joiners: str) -> bool:
    return all(c.isspace() or c in joiners for c in gap) and gap.count("\n") == 0


def _joined(run: list[Entity], text: str) -> Entity:
    if len(run) == 1:
        return run[0]
    start, end = run[0].start, run[-1].end
    weights = [max(1, e.end - e.start) for e in run]
    score = sum(e.score * w for e, w in zip(run, weights)) / sum(weights)
    return Entity(label=run[0].label, start=start, end=end, score=float(score), text=text[start:end],
                  word=text[start:end])
