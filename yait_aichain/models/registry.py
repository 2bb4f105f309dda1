"""Which provider serves a model name, and what its tokens cost.

The registry is a guide, not a gatekeeper: any name whose provider can be told (from its
prefix, a ``"provider/model"`` form, or ``provider=``) is accepted. Prices are USD per
million tokens as published by the providers in November 2026; a model that is not listed
has ``cost=None`` in its usage unless ``Model(price=(input, output))`` is given.
"""

from __future__ import annotations

import re

from ..errors import ConfigurationError
from .providers import ADAPTERS, ALIASES, DEFAULT_LOCAL_BASE_URLS, provider_key

__all__ = ["PROVIDERS", "infer_provider", "normalise_provider", "price_for", "split_name"]

#: The wire formats we speak; other names that select them are in ``providers.ALIASES``.
PROVIDERS = tuple(ADAPTERS)

#: Default base URLs of local servers, by the alias that named them.
LOCAL_BASE_URLS = DEFAULT_LOCAL_BASE_URLS

_PATTERNS = (
    (re.compile(r"^claude-"), "anthropic"),
    (re.compile(r"^gemini-"), "gemini"),
    (re.compile(r"^(gpt-|chatgpt-|o\d)"), "openai"),
)

# (pattern on the bare model name, (input USD, output USD) per 1M tokens). First match wins,
# so specific names come before families.
_PRICES = (
    (re.compile(r"^claude-opus-4-[5-9]"), (5.0, 25.0)),
    (re.compile(r"^claude-opus-4"), (15.0, 75.0)),
    (re.compile(r"^claude-sonnet-4"), (3.0, 15.0)),
    (re.compile(r"^claude-3-7-sonnet"), (3.0, 15.0)),
    (re.compile(r"^claude-haiku-4"), (1.0, 5.0)),
    (re.compile(r"^claude-3-5-haiku"), (0.8, 4.0)),
    (re.compile(r"^gpt-4o-mini"), (0.15, 0.60)),
    (re.compile(r"^gpt-4o"), (2.50, 10.0)),
    (re.compile(r"^gpt-4\.1-nano"), (0.10, 0.40)),
    (re.compile(r"^gpt-4\.1-mini"), (0.40, 1.60)),
    (re.compile(r"^gpt-4\.1"), (2.0, 8.0)),
    (re.compile(r"^o4-mini"), (1.10, 4.40)),
    (re.compile(r"^o3-mini"), (1.10, 4.40)),
    (re.compile(r"^gemini-2\.5-flash-lite"), (0.10, 0.40)),
    (re.compile(r"^gemini-2\.5-flash"), (0.30, 2.50)),
    (re.compile(r"^gemini-2\.5-pro"), (1.25, 10.0)),
    (re.compile(r"^gemini-2\.0-flash"), (0.10, 0.40)),
)


def normalise_provider(name: str) -> str:
    """The wire format a provider name or alias selects.

    Raises:
        ConfigurationError: the name is unknown.
    """
    key = provider_key(name)
    if key is None:
        known = ", ".join(sorted(set(ADAPTERS) | set(ALIASES)))
        raise ConfigurationError(f"unknown provider {name!r}; use one of: {known}")
    return key


def split_name(name: str) -> tuple[str | None, str]:
    """Split ``"provider/model"`` into its parts when the prefix is a known provider.

    Other slashes are left alone (``"meta-llama/Llama-3-8B"`` is a model name on vLLM).
    """
    head, sep, tail = name.partition("/")
    if sep and tail and provider_key(head) is not None:
        return head.strip().lower(), tail
    return None, name


def infer_provider(model: str) -> str | None:
    """The provider a bare model name belongs to, or None when the name does not tell."""
    lowered = model.lower()
    for pattern, provider in _PATTERNS:
        if pattern.match(lowered):
            return provider
    return None


def price_for(model: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for a known model, else None."""
    lowered = model.lower()
    for pattern, price in _PRICES:
        if pattern.match(lowered):
            return price
    return None
