"""The simulator's prompt cache: prefixes written by one request, read by later ones.

As at the providers, a prefix becomes readable only once the request that wrote it has
answered, so requests that arrive together all miss (why a Pool lets one item go first).
The prefix: Anthropic's up to the last ``cache_control`` block, OpenAI's leading
system/developer messages (or ``prompt_cache_key``), Gemini's ``systemInstruction``;
each reported in its usage fields.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..models._caching import min_cacheable_tokens
from . import _wire as W

__all__ = ["PromptCache", "Ticket"]


@dataclass(frozen=True)
class Ticket:
    """What one request found in the cache: its prefix ``key``, size and whether it hit."""

    key: str
    tokens: int
    hit: bool
    provider: str


def _blocks(value: Any) -> list[Any]:
    return [{"type": "text", "text": value}] if isinstance(value, str) else W.dicts(value)


def _anthropic_prefix(body: dict[str, Any]) -> tuple[str, int] | None:
    digest, words, found = hashlib.sha256(), 0, None
    blocks = _blocks(body.get("system"))
    for message in W.dicts(body.get("messages")):
        blocks += _blocks(message.get("content"))
    for block in blocks:
        text = block.get("text") if isinstance(block.get("text"), str) else ""
        digest.update(text.encode("utf-8") + b"\x00")
        words += len(text.split())
        if isinstance(block.get("cache_control"), dict):
            found = (digest.hexdigest(), words)
    return found


def _prefix(info: W.ReplyInfo) -> tuple[str, int] | None:
    """(hash, words) of the request's cacheable prefix."""
    body = info.body
    if info.provider == W.ANTHROPIC:
        return _anthropic_prefix(body)
    texts, hint = [info.system_text], None
    if info.provider == W.OPENAI:  # its leading system/developer messages
        leading = itertools.takewhile(lambda m: m.get("role") in ("system", "developer"),
                                      W.dicts(body.get("messages")))
        texts, hint = [W.text_of(m.get("content")) for m in leading], body.get("prompt_cache_key")
    seed = hint if isinstance(hint, str) and hint else "\x00".join(texts)
    return hashlib.sha256(seed.encode("utf-8")).hexdigest(), sum(len(t.split()) for t in texts)


class PromptCache:
    """Cached prefixes of one simulator (``sim.prompt_cache``); thread-safe.

    Attributes:
        ttl: seconds an entry lives after its last use (Anthropic's default is 5 minutes).
        writes, reads: how many requests wrote or read a cached prefix.
    """

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self.writes = self.reads = 0
        self._lock = threading.Lock()
        self._entries: dict[str, float] = {}

    def clear(self) -> None:
        """Forget every cached prefix and zero the counters."""
        with self._lock:
            self._entries.clear()
            self.writes = self.reads = 0

    def begin(self, info: W.ReplyInfo) -> Ticket | None:
        """What an arriving request finds; None when it has no cacheable prefix."""
        found = _prefix(info)
        if found is None or found[1] < min_cacheable_tokens(info.provider, info.model):
            return None
        key = f"{info.provider}:{info.model}:{found[0]}"
        now = time.time()
        with self._lock:
            hit = self._entries.get(key, 0.0) > now
            if hit:
                self._entries[key] = now + self.ttl
                self.reads += 1
        return Ticket(key, found[1], hit, info.provider)

    def finish(self, ticket: Ticket | None, body: dict[str, Any]) -> None:
        """Report the cache in the reply's usage; a miss writes the prefix, readable
        from now on."""
        if ticket is None:
            return
        if not ticket.hit:
            with self._lock:
                self._entries[ticket.key] = time.time() + self.ttl
                self.writes += 1
        read = ticket.tokens if ticket.hit else 0
        if ticket.provider == W.ANTHROPIC:
            usage = body.setdefault("usage", {})
            usage["input_tokens"] = max(int(usage.get("input_tokens", 0)) - ticket.tokens, 0)
            usage.update(cache_creation_input_tokens=ticket.tokens - read,
                         cache_read_input_tokens=read)
        elif ticket.provider == W.OPENAI:
            body.setdefault("usage", {})["prompt_tokens_details"] = {"cached_tokens": read}
        elif read:
            body.setdefault("usageMetadata", {})["cachedContentTokenCount"] = read
