"""Option values checked once where a call enters koner: named choices (aggregation strategy, decoder) as
enums, and positive counts (threads, workers, batch sizes)."""
from __future__ import annotations

from enum import Enum
from typing import TypeVar

C = TypeVar("C", bound="Choice")


class Choice(str, Enum):
    """A string enum whose `parse` names the option and its valid values in its error."""

    @classmethod
    def parse(cls: "type[C]", value: "str | Choice") -> C:
        """The member named `value`; ValueError listing the valid names otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{cls.__option__} must be one of {', '.join(m.value for m in cls)}, "
                             f"not {value!r}") from None


# threads and worker threads at most: more than any server's cores, and far below what exhausts memory (each
# onnxruntime thread and each worker holds its own buffers)
MAX_THREADS = 256


def check_threads(name: str, value: object) -> int:
    """`value` when it is a positive integer of at most MAX_THREADS; ValueError naming the option otherwise."""
    check_positive(name, value)
    assert isinstance(value, int)
    if value > MAX_THREADS:
        raise ValueError(f"{name} must be at most {MAX_THREADS}, not {value:,}")
    return value


def check_positive(name: str, value: object) -> int:
    """`value` when it is a positive integer (not a bool); ValueError naming the option otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value
