"""Where submitted batch ids are kept, so a restarted process never pays for them twice.

A journal is a JSON Lines file beside the Pool's checkpoint (``<checkpoint>.batches``):
one line per batch, on disk the moment the provider returns the id. A batch is found again
by the digest of exactly what was submitted (base URL and the rendered requests), so
changed inputs are submitted afresh. The file holds ids and keys only: no key, no prompt.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Journal", "Submitted"]


@dataclass(frozen=True)
class Submitted:
    """One batch at a provider: its id, the model, the digest of what was sent, and the
    keys of the requests in it."""

    batch_id: str
    provider: str
    model: str
    digest: str
    keys: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The batch as JSON values."""
        return {**dataclasses.asdict(self), "keys": list(self.keys)}


class Journal:
    """The batches submitted for one job, kept in ``path`` (None: in memory only)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, Submitted] = {}
        if self.path is not None and self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        raw = json.loads(line)
                        entry = Submitted(str(raw["batch_id"]), str(raw["provider"]),
                                          str(raw["model"]), str(raw["digest"]),
                                          tuple(str(k) for k in raw["keys"]))
                    except (ValueError, KeyError, TypeError):
                        continue  # a line torn by a kill mid-write: that batch was not saved
                    self._entries[entry.digest] = entry

    def find(self, digest: str) -> Submitted | None:
        """The batch submitted for exactly these requests, if any."""
        with self._lock:
            return self._entries.get(digest)

    def add(self, entry: Submitted) -> None:
        """Remember a batch; on disk before this returns."""
        with self._lock:
            self._entries[entry.digest] = entry
            if self.path is None:
                return
            line = json.dumps(entry.as_dict(), ensure_ascii=False) + "\n"
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def entries(self) -> list[Submitted]:
        """Every batch remembered."""
        with self._lock:
            return list(self._entries.values())

    def clear(self) -> None:
        """Forget every batch (a fresh run over the same checkpoint)."""
        with self._lock:
            self._entries.clear()
            if self.path is not None:
                self.path.unlink(missing_ok=True)
