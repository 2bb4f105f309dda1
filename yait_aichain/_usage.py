"""Token usage and cost of one call, or of many added together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Usage"]

@dataclass(frozen=True)
class Usage:
    """Tokens used by a call; ``cost`` in USD where the model's price is known, else None.

    ``input_tokens`` counts every prompt token, ``cache_read_tokens`` and
    ``cache_write_tokens`` those read from or written to the provider's prompt cache (each
    billed at its own rate). Usages add up (``a + b``, ``sum(usages)``); a summed cost is
    None only when every part's cost is None.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Any) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        cost = None
        if self.cost is not None or other.cost is not None:
            # Rounded like each call's cost: float sums otherwise print 0.024594000000000008.
            cost = round((self.cost or 0.0) + (other.cost or 0.0), 10)
        counts = {key: n + getattr(other, key) for key, n in vars(self).items() if key != "cost"}
        return Usage(**counts, cost=cost)

    def __radd__(self, other: Any) -> Usage:
        return self if other == 0 else self.__add__(other)  # sum() starts from 0

    def __bool__(self) -> bool:
        return bool(self.input_tokens or self.output_tokens or self.total_tokens)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # the fields, in order (fast: asdict deep-copies)
