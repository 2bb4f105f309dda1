"""Prompt caching: when a static prompt prefix is long enough to be worth marking.

A provider caches a prefix only from a minimum length on (shorter ones are billed in
full, without an error). Anthropic caches what ``cache_control`` marks; OpenAI caches
prefixes of 1,024 tokens and more by itself, helped by a ``prompt_cache_key`` hint;
Gemini caches implicitly. Tokens are estimated at four characters each: the marker is
harmless when the estimate is a little off.
"""

from __future__ import annotations

import re

__all__ = ["CHARS_PER_TOKEN", "MARKING_PROVIDERS", "min_cacheable_tokens"]

#: The rough size of a token in characters, for deciding whether a prefix is long enough.
CHARS_PER_TOKEN = 4
#: Providers whose requests carry a cache marker or hint.
MARKING_PROVIDERS = frozenset({"anthropic", "openai"})
# Anthropic's documented minimum cacheable prompt per model family; first match wins.
_ANTHROPIC_MINIMUM = (
    (re.compile(r"^claude-(opus-4-[56]|haiku-4-5)"), 4096),
    (re.compile(r"^claude-(sonnet-4-6|opus-4-7|3-5-haiku|3-haiku|haiku-3)"), 2048),
)


def min_cacheable_tokens(provider: str, model: str) -> int:
    """The shortest prefix (in tokens) the provider caches for this model."""
    rows = _ANTHROPIC_MINIMUM if provider == "anthropic" else ()
    return next((n for pattern, n in rows if pattern.match(model.lower())), 1024)
