"""Provider adapters: pure translation between normalised messages and each wire format.

``ADAPTERS`` maps a provider name to its (stateless, thread-safe) adapter; ``ALIASES``
maps other spellings to those names; ``DEFAULT_LOCAL_BASE_URLS`` gives the usual address
of each local server that speaks the OpenAI format.
"""

from __future__ import annotations

from ...errors import ConfigurationError
from ._anthropic import AnthropicAdapter
from ._base import OPTION_NAMES, TEXT, Adapter, OutputSpec, Parsed, WireRequest
from ._gemini import GeminiAdapter
from ._openai import OpenAIAdapter, OpenAICompatibleAdapter

__all__ = ["ADAPTERS", "ALIASES", "Adapter", "AnthropicAdapter", "DEFAULT_LOCAL_BASE_URLS",
           "GeminiAdapter", "OPTION_NAMES", "OpenAIAdapter", "OpenAICompatibleAdapter",
           "OutputSpec", "Parsed", "TEXT", "WireRequest", "get_adapter", "provider_key"]

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (AnthropicAdapter(), OpenAIAdapter(), GeminiAdapter(), OpenAICompatibleAdapter())
}

DEFAULT_LOCAL_BASE_URLS: dict[str, str] = {
    "ollama": "http://localhost:11434/v1",
    "vllm": "http://localhost:8000/v1",
    **dict.fromkeys(("llamacpp", "llama.cpp", "llama-cpp"), "http://127.0.0.1:8080/v1"),
    **dict.fromkeys(("lmstudio", "lm-studio"), "http://localhost:1234/v1"),
}

ALIASES: dict[str, str] = {
    "claude": "anthropic",
    "google": "gemini",
    **dict.fromkeys(("compatible", "openai_compatible", *DEFAULT_LOCAL_BASE_URLS, "local"),
                    "openai-compatible"),
}


def provider_key(name: str) -> str | None:
    """The adapter key a provider name or alias selects (case-insensitive), or None."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in ADAPTERS else None


def get_adapter(provider: str) -> Adapter:
    """The adapter for a provider name or alias (case-insensitive).

    Raises:
        ConfigurationError: the name is unknown; the message lists the known ones.
    """
    key = provider_key(provider) if isinstance(provider, str) else None
    if key is not None:
        return ADAPTERS[key]
    known = ", ".join(sorted(set(ADAPTERS) | set(ALIASES)))
    raise ConfigurationError(f"unknown provider {provider!r}; known providers: {known}")
