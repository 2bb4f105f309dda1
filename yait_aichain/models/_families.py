"""Which sampling settings each model family accepts: the one table of it.

Some models refuse sampling settings outright (HTTP 400 for every item of a batch):
OpenAI's o-series and GPT-5-family reasoning models reject ``temperature``/``top_p``
other than the default, and Anthropic's API version 2026-10-21 (the one the current API
reference and SDK use, and we send) removed ``temperature``, ``top_p`` and ``top_k`` for
every Claude model. Rather than fail a whole Pool, the adapters leave such settings out
and say so once in the log; the README shows this table. The first row whose provider
and pattern match the bare model name wins.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["FAMILIES", "Family", "family_for", "sampling_options"]

logger = logging.getLogger("yait_aichain.models")

#: The settings this module decides about; every other option passes untouched.
SAMPLING = frozenset({"temperature", "top_p", "top_k"})


@dataclass(frozen=True)
class Family:
    """A group of models that accept the same sampling settings; ``pattern`` is searched
    in the bare model name, case-insensitively."""

    provider: str
    pattern: str
    why: str
    accepts: frozenset[str] = frozenset()


FAMILIES: tuple[Family, ...] = (
    Family("openai", r"^o\d", "o-series reasoning models reject temperature and top_p"),
    # gpt-5-chat-* is the non-reasoning chat model and still takes sampling settings.
    Family("openai", r"^gpt-(?:[5-9]|\d{2,})(?![\w.]*-chat)",
           "GPT-5-family reasoning models reject temperature and top_p other than the "
           "default (400 unsupported_value)"),
    Family("openai", r"", "OpenAI has no top_k", frozenset({"temperature", "top_p"})),
    Family("anthropic", r"", "Anthropic API version 2026-10-21 removed temperature, top_p "
           "and top_k (400 even at the default)"),
    Family("gemini", r"", "all accepted", SAMPLING),
    Family("openai-compatible", r"", "local servers take them all", SAMPLING),
)

_warned: set[tuple[str, str]] = set()


@functools.lru_cache(maxsize=1024)  # read on every request: the rows are fixed
def family_for(provider: str, model: str) -> Family:
    """The first family row for this provider and (bare) model name (every provider has a
    catch-all row)."""
    bare = model.rsplit("/", 1)[-1]
    return next(f for f in FAMILIES if f.provider == provider
                and re.search(f.pattern, bare, re.IGNORECASE))


def sampling_options(provider: str, model: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without the sampling settings this model refuses; what is left out is
    logged once per model and setting."""
    family = family_for(provider, model)
    kept: dict[str, Any] = {}
    for name, value in options.items():
        if name not in SAMPLING or name in family.accepts:
            kept[name] = value
        elif value is not None and (model, name) not in _warned:
            _warned.add((model, name))
            logger.info("not sending %s to %s model %r: %s", name, provider, model, family.why)
    return kept
