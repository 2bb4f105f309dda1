"""Which provider serves a model name, and what its tokens cost.

The registry is a guide, not a gatekeeper: any name whose provider can be told (from its
prefix, a ``"provider/model"`` form, or ``provider=``) is accepted. Prices come from the
maintained ``genai-prices`` data (see ``_prices.py``); a model it does not know has
``cost=None`` in its usage unless ``Model(price=(input, output))`` is given.
"""

from __future__ import annotations

import os
import re
import warnings

from ..errors import ConfigurationError
from ._prices import Price, lookup_price
from .providers import ADAPTERS, DEFAULT_LOCAL_BASE_URLS, get_adapter, provider_key

__all__ = ["KNOWN_MODELS", "PROVIDERS", "infer_provider", "normalise_provider", "price_for",
           "split_name", "suggest_model", "warn_near_miss"]

#: The wire formats we speak; other names that select them are in ``providers.ALIASES``.
PROVIDERS = tuple(ADAPTERS)
_PATTERNS = ((re.compile(r"^claude-"), "anthropic"), (re.compile(r"^gemini-"), "gemini"),
             (re.compile(r"^(gpt-|chatgpt-|o\d)"), "openai"))

#: Model names the providers publish (November 2026), for "did you mean" on a typo. Not a
#: gatekeeper: any other name is still sent as given.
KNOWN_MODELS = (
    "claude-opus-4-5", "claude-opus-4-1", "claude-opus-4-0", "claude-sonnet-4-6",
    "claude-sonnet-4-5", "claude-sonnet-4-0", "claude-sonnet-4", "claude-opus-4",
    "claude-haiku-4-5", "claude-3-7-sonnet-latest", "claude-3-5-haiku-latest",
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini",
    "gpt-5-nano", "o1", "o3", "o3-mini", "o4-mini", "chatgpt-4o-latest",
    "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash",
)


def _one_edit_apart(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours, but not a changed
    digit: ``gpt-4.2`` or ``claude-sonnet-4-7`` may be a newer model, not a typo."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    short, long = sorted((a, b), key=len)
    i = next((k for k in range(len(short)) if short[k] != long[k]), len(short))
    if len(a) != len(b):
        return short[i:] == long[i + 1:] and not long[i].isdigit()
    if a[i + 1:] == b[i + 1:]:
        return not (a[i].isdigit() and b[i].isdigit())
    return a[i + 2:] == b[i + 2:] and a[i] == b[i + 1] and a[i + 1] == b[i]


def suggest_model(name: str) -> str | None:
    """The known model name one edit away from ``name`` (``claude-sonet-4`` ->
    ``claude-sonnet-4``), or None when ``name`` is known or near none."""
    lowered = name.lower()
    if lowered in KNOWN_MODELS:
        return None
    return next((known for known in KNOWN_MODELS if _one_edit_apart(lowered, known)), None)


def warn_near_miss(name: str, stacklevel: int = 3) -> None:
    """Warn, before any request, when ``name`` looks like a typo of a known model: every
    call with it would fail as "model not found"."""
    known = suggest_model(name)
    if known is not None:
        warnings.warn(
            f"model {name!r} is not a model name we know; did you mean {known!r}? (a model "
            "the provider does not serve fails every call)", UserWarning, stacklevel=stacklevel,
        )


def normalise_provider(name: str) -> str:
    """The wire format a provider name or alias selects (ConfigurationError if unknown)."""
    return get_adapter(name).name


def split_name(name: str) -> tuple[str | None, str]:
    """Split ``"provider/model"`` when the prefix is a known provider; other slashes are
    left alone (``"meta-llama/Llama-3-8B"`` is a model name on vLLM)."""
    head, sep, tail = name.partition("/")
    if sep and tail and provider_key(head) is not None:
        return head.strip().lower(), tail
    return None, name


def infer_provider(model: str) -> str | None:
    """The provider a bare model name belongs to, or None when the name does not tell."""
    lowered = model.lower()
    return next((provider for pattern, provider in _PATTERNS if pattern.match(lowered)), None)


def resolve(name: str, provider: str | None) -> tuple[str, str]:
    """(the provider or alias, the model name to send) for ``Model(name, provider=)``."""
    prefix, bare = split_name(name)
    if provider is not None:
        same = prefix is not None and normalise_provider(prefix) == normalise_provider(provider)
        return provider, bare if same else name
    if prefix is not None:
        return prefix, bare
    inferred = infer_provider(name)
    if inferred is None:
        raise ConfigurationError(
            f"cannot tell which provider serves {name!r}; pass provider= (anthropic, openai, "
            f"gemini, or openai-compatible/ollama/vllm/llamacpp/lmstudio with base_url=) or "
            f"write it as 'provider/{name}'")
    return inferred, name


def base_url_for(alias: str, provider: str, given: str | None) -> str:
    """``given``, else a local server's default for its alias, else the provider's
    environment variable, else its default; ConfigurationError if none is http(s)."""
    adapter = ADAPTERS[provider]
    url = (given or DEFAULT_LOCAL_BASE_URLS.get(alias.strip().lower())
           or adapter.base_url_from_env(os.environ) or adapter.default_base_url)
    if not url:
        raise ConfigurationError(
            f"provider {provider!r} needs base_url=, e.g. 'http://localhost:11434/v1' "
            f"for Ollama or 'http://localhost:8000/v1' for vLLM")
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://, got {url!r}")
    return url.rstrip("/")


def price_for(model: str, provider: str | None = None) -> Price | None:
    """The :class:`Price` (USD per 1M tokens, with cache and batch rates) of a known
    model, else None. ``provider`` defaults to the one the name implies."""
    provider = provider or infer_provider(model)
    if provider is None:
        return None
    return lookup_price(normalise_provider(provider), model.strip().lower())
