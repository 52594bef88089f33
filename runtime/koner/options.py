"""Entity options: how a model's scores become the entities a caller asked for, parsed and checked once.

`Options` is one frozen value. Each boundary builds it once from what it was given (`NER.load`'s keyword
arguments, the command line, a server request, a spaCy config, a batch engine's arguments) and hands it on
whole; per-call changes are `options.override(...)`. What can only be checked against a model (entity types
in `labels` and `merge`, `window` against its length, `overlap` against the window) is checked when a model
takes the options.

A new entity option is a field here (with its check in `parse`), the stage that uses it, and its flag or
request field where users give it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Mapping, Optional, Union

from .aggregate import Strategy, check_decode
from .decode import Decode
from .scheme import Grouping, Scheme
from .spans import JOINERS

Labels = Union[None, str, Iterable[str]]  # entity types to keep: "PS,LC" or ["PS", "LC"]
Merge = Union[bool, str, Iterable[str], None]  # True: the measured default types; or the types to merge
LONG_TEXT = ("windows", "pipeline")  # how a text longer than the model runs: koner's stitched windows, or the pipeline's chunks
# None means "not set": every type, no merging, the manifest's scheme, the default window and overlap
NULLABLE = ("labels", "merge", "scheme", "window", "overlap")
PER_CALL = ("aggregation", "decode", "labels", "merge")  # the options a call may change on a loaded model


@dataclass(frozen=True)
class Options:
    """Entity options, checked: aggregation strategy, decoder, type filter, merging, label scheme, long texts."""

    aggregation: Strategy = Strategy.SIMPLE
    decode: Decode = Decode.ARGMAX
    labels: Optional[tuple[str, ...]] = None  # entity types to keep; None: every type
    merge: Union[bool, tuple[str, ...]] = False  # True: the measured default types; or the types to merge
    merge_across: str = "space"  # "space" or "punct" (also `·` and `-`)
    scheme: Optional[Scheme] = None  # None: the manifest's, else read from the labels
    grouping: Grouping = Grouping.PIPELINE
    long_text: str = "windows"  # "windows" (koner's stitched windows) or "pipeline" (the pipeline's chunks)
    # a text longer than the model: tokens in each window ([CLS] and [SEP] included; None: 256, or four times an
    # overlap given, at most the model's length) and tokens shared by neighbouring windows (None: a quarter of the
    # window) or the pipeline's chunks (None: 128, its usual stride)
    window: Optional[int] = None
    overlap: Optional[int] = None

    @classmethod
    def parse(cls, **values: Any) -> "Options":
        """Options from user values (strings, lists, enums); a value left out keeps its default, and so does
        None where it means "not set" (labels, merge, scheme)."""
        return cls()._with(values, keep_none=NULLABLE)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Options":
        """Options from the entries of `values` named like a field (an argparse namespace's vars, a config)."""
        return cls.parse(**{k: v for k, v in values.items() if k in FIELDS})

    def override(self, **values: Any) -> "Options":
        """These options with the given values (None: unchanged), checked as `parse` checks them."""
        return self._with(values, keep_none=FIELDS)

    def _with(self, values: Mapping[str, Any], keep_none: tuple[str, ...]) -> "Options":
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}; koner's entity options are {', '.join(FIELDS)}")
        given = {k: v for k, v in values.items() if v is not None or k not in keep_none}
        if not given:
            return self
        changed = {k: _PARSERS[k](v) for k, v in given.items()}  # in the order given: the first bad one is named
        return replace(self, **changed)  # checked together by __post_init__

    def __post_init__(self) -> None:
        """Every field parsed (a name becomes its enum, a list a tuple) and the combination checked, however the
        value was made: `Options(aggregation="bogus")` is refused as `Options.parse` refuses it."""
        for name in FIELDS:
            value = getattr(self, name)
            if value is not None or name not in NULLABLE:
                object.__setattr__(self, name, _PARSERS[name](value))
        self._check()

    def _check(self) -> None:
        check_decode(self.aggregation, self.decode)
        if self.window is not None and self.long_text == "pipeline":
            raise ValueError("window sets koner's stitched windows; with long_text='pipeline' a long text runs in "
                             "the pipeline's chunks (their stride: overlap): leave window out")
        if self.aggregation is Strategy.NONE and self.long_text == "pipeline":
            raise ValueError("aggregation 'none' does not work with long_text='pipeline': the transformers "
                             "pipeline refuses it with a stride; choose simple, first, average or max")


def _long_text(value: object) -> str:
    if value not in LONG_TEXT:
        raise ValueError(f"long_text must be one of {', '.join(LONG_TEXT)}, not {value!r}")
    return str.__str__(value)  # type: ignore[arg-type]


def _overlap(value: object) -> int:
    # its upper bound depends on the window: checked when a model takes the options
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"overlap must be an integer of tokens from 0 to half the window, not {value!r}")
    return int(value)


def _window(value: object) -> int:
    # its upper bound is the model's length: checked when a model takes the options
    if not isinstance(value, int) or isinstance(value, bool) or value < 3:
        raise ValueError(f"window must be an integer of tokens from 3 to the model's max_length, not {value!r}")
    return int(value)


def _across(value: object) -> str:
    if value not in JOINERS:
        raise ValueError(f"merge_across must be one of {', '.join(JOINERS)}, not {value!r}")
    return str.__str__(value)  # type: ignore[arg-type]


def type_list(value: Union[str, Iterable[str]]) -> tuple[str, ...]:
    """Entity types as a tuple: "PS, LC" -> ("PS", "LC"); a list of names as given."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def _merge(value: object) -> Union[bool, tuple[str, ...]]:
    if value is True or value is False:
        return value
    if value == False:  # noqa: E712 - 0 and the like mean no merging, as they always did
        return False
    return type_list(value)  # type: ignore[arg-type]


_PARSERS = {
    "aggregation": Strategy.parse,
    "decode": Decode.parse,
    "labels": type_list,
    "merge": _merge,
    "merge_across": _across,
    "scheme": Scheme.parse,
    "grouping": Grouping.parse,
    "long_text": _long_text,
    "window": _window,
    "overlap": _overlap,
}
FIELDS = tuple(f.name for f in fields(Options))
assert set(FIELDS) == set(_PARSERS), "every option has its parser"
