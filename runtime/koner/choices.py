"""Named choices (aggregation strategy, decoder) as enums, parsed once where a call enters koner."""
from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A string enum whose `parse` names the option and its valid values in its error."""

    @classmethod
    def parse(cls, value: "str | Choice") -> "Choice":
        """The member named `value`; ValueError listing the valid names otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{cls.__option__} must be one of {', '.join(m.value for m in cls)}, "
                             f"not {value!r}") from None
