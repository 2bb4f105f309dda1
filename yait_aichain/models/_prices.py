"""What tokens cost: the :class:`Price` of a model, read from the ``genai-prices`` data.

``genai-prices`` (MIT, maintained by Pydantic) ships its price table inside the package, so
no lookup touches the network. It is read once per model name and turned into a small
immutable :class:`Price`; every call is then priced by plain arithmetic here, because the
library's own per-call calculation costs about a millisecond (a minute of CPU over 100,000
items). Only the standard token units are priced (input, output, cache reads and writes).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, TypeVar

from .._checks import NUMBER, checked
from .._usage import Usage
from ..errors import ConfigurationError

__all__ = ["Price", "coerce_price", "lookup_price"]

#: Our wire-format names to the provider ids of the price data.
_PRICE_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "gemini": "google"}
#: All three providers bill batch requests at half the live rates; used when the data has
#: no batch rate of its own for a model, and for a ``price=`` the caller gave.
BATCH_DISCOUNT = 0.5
R = TypeVar("R")
_FIELDS = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True)
class Price:
    """USD per million tokens.

    ``cache_read`` and ``cache_write`` are the rates of prompt tokens read from or written
    to the provider's prompt cache (None: billed as ordinary input). ``tiers`` holds
    ``(prompt_tokens, Price)`` pairs: from that many prompt tokens on, the whole request is
    billed at that price (Gemini 2.5 Pro over 200k tokens). ``batch`` is the price of the
    same model through the provider's Batch API (None: half of this one).
    """

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    tiers: tuple[tuple[int, Price], ...] = ()
    batch: Price | None = None

    def for_batch(self) -> Price:
        """The price of batch requests."""
        return self.batch if self.batch is not None else _scaled(self, BATCH_DISCOUNT)

    def cost(self, usage: Usage) -> float:
        """USD for one call's usage. ``usage.input_tokens`` counts every prompt token,
        the cached ones included (as all three providers report them, once summed)."""
        rate = _tier(self, self.tiers, usage.input_tokens)
        read, write = usage.cache_read_tokens, usage.cache_write_tokens
        total = (max(usage.input_tokens - read - write, 0) * rate.input
                 + read * (rate.input if rate.cache_read is None else rate.cache_read)
                 + write * (rate.input if rate.cache_write is None else rate.cache_write)
                 + usage.output_tokens * rate.output)
        return round(total / 1e6, 10)


def _tier(base: R, tiers: Sequence[tuple[int, R]], tokens: int) -> R:
    """The rate of the last tier that starts at or below ``tokens``, else ``base``."""
    return next((rate for start, rate in reversed(tiers) if tokens >= start), base)


def _scaled(price: Price, factor: float) -> Price:
    rates = {name: getattr(price, name) * factor for name in _FIELDS
             if getattr(price, name) is not None}
    return replace(price, **rates, tiers=tuple((s, _scaled(t, factor)) for s, t in price.tiers),
                   batch=None)


def coerce_price(value: Any) -> Price | None:
    """A ``price=`` argument as a :class:`Price`: a Price, ``(input, output)``,
    ``(input, output, cache_read, cache_write)`` or a mapping of those names.

    Raises:
        ConfigurationError: anything else, or a negative or non-numeric rate.
    """
    if value is None or isinstance(value, Price):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - set(_FIELDS) - {"batch"}
        if unknown:
            raise ConfigurationError(
                f"unknown price key(s) {sorted(unknown)}; use {list(_FIELDS)} and 'batch'")
        rates: list[Any] = [value.get(name) for name in _FIELDS]
        batch = coerce_price(value.get("batch"))
    elif isinstance(value, (tuple, list)) and len(value) in (2, 4):
        rates = list(value) + [None] * (4 - len(value))
        batch = None
    else:
        raise ConfigurationError(
            f"price must be (input, output) or (input, output, cache_read, cache_write) in USD "
            f"per million tokens, got {value!r}")
    floats = [checked(rate, f"price {name}", NUMBER, none=name not in ("input", "output"))
              for name, rate in zip(_FIELDS, rates, strict=True)]
    return Price(floats[0], floats[1], floats[2], floats[3], batch=batch)


@functools.lru_cache(maxsize=512)
def lookup_price(provider: str, model: str) -> Price | None:
    """The published price of ``model`` at ``provider`` (our wire-format name), with its
    batch price, or None when the price data does not know the model."""
    provider_id = _PRICE_PROVIDERS.get(provider)
    if provider_id is None:
        return None  # local servers and other OpenAI-compatible hosts: nothing is known
    try:
        from genai_prices import data_snapshot
    except ImportError:  # pragma: no cover - a declared dependency; a broken install
        return None
    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    now = datetime.now(timezone.utc)
    live = _from_data(info.get_prices(now))
    if live is None:
        return None
    has_batch = any(v.when.get("processing") == "batch" for v in info.price_variants or ())
    batch = _from_data(info.get_prices(now, {"processing": "batch"})) if has_batch else None
    return replace(live, batch=batch)


def _from_data(prices: Any) -> Price | None:
    """Our Price from the data's ModelPrice (flat or tiered rates per unit)."""
    raw: dict[str, Any] = {name: getattr(prices, f"{name}_mtok", None) for name in _FIELDS}
    if raw["input"] is None or raw["output"] is None:
        return None
    starts = sorted({t.start for v in raw.values() if hasattr(v, "tiers") for t in v.tiers})

    def at(value: Any, tokens: int) -> float | None:
        if value is None:
            return None
        if not hasattr(value, "tiers"):
            return float(value)
        return float(_tier(value.base, [(t.start, t.price) for t in value.tiers], tokens))

    def level(tokens: int) -> Price:
        # Every field is a float for input/output, checked above.
        return Price(*(at(raw[name], tokens) for name in _FIELDS))  # type: ignore[arg-type]

    return replace(level(0), tiers=tuple((s, level(s)) for s in starts))
