"""Which provider serves a model name, and what its tokens cost.

The registry is a guide, not a gatekeeper: any name whose provider can be told (from its
prefix, a ``"provider/model"`` form, or ``provider=``) is accepted. Prices come from the
maintained ``genai-prices`` data (see ``_prices.py``); a model it does not know has
``cost=None`` in its usage unless ``Model(price=(input, output))`` is given.
"""

from __future__ import annotations

import re

from ..errors import ConfigurationError
from ._prices import Price, lookup_price
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


def price_for(model: str, provider: str | None = None) -> Price | None:
    """The :class:`Price` (USD per 1M tokens, with cache and batch rates) of a known
    model, else None. ``provider`` defaults to the one the name implies."""
    provider = provider or infer_provider(model)
    if provider is None:
        return None
    return lookup_price(normalise_provider(provider), model.strip().lower())
