"""Checkpoint/resume: ended items are appended to a JSONL file as they end, and a later run
with the same file takes the DONE results from there instead of paying for them again.

One JSON object per line, never rewritten (FAILED items too, for inspection; they run again)::

    {"v": 1, "key": "<sha256>", "runner": "<12 hex>", "index": 7, "status": "DONE",
     "output": ..., "usage": {...}, "attempts": 1, "duration": 0.42, "end": 1767225600.0}

Why JSONL and not SQLite: one writer only ever appends, ``tail -f``/``jq`` read it mid-run,
and a torn last line after a crash is cheap to cut off. Each line is one ``write()`` as the
item is reported (``kill -9`` loses only the items in flight); ``fsync`` runs at most every
``fsync_interval`` seconds and at the end. The key hashes the runner's ``identity()`` (see
the README's "Rate limits and resume"; nothing is guessed from bytecode) and the item's
merged variables; API keys and variables never enter the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._checks import NUMBER, checked
from .._runner import PLAIN, describe, qualname, user_stacklevel
from .._text import json_bytes, json_loads
from ..errors import ConfigurationError
from ._rows import plain
from ._record import ItemRecord, RecordBook
from ._status import DONE, FAILED

try:  # POSIX: keep two runs from appending to one file at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["DEFAULT_FSYNC_INTERVAL", "Checkpoint", "Journal", "canonical_json",
           "check_checkpoint", "runner_identity"]

DEFAULT_FSYNC_INTERVAL = 1.0
FORMAT_VERSION = 1
_MAX_ERROR_CHARS = 500
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")


def canonical_json(value: Any, on_unstable: Callable[[str], None] | None = None) -> str:
    """Sorted-key, whitespace-free JSON; values JSON cannot hold become a tagged repr. A
    repr that holds a memory address changes every run, so such items never match a
    stale result (they run again); ``on_unstable(type_name)`` is told when that happens."""

    def fallback(obj: Any) -> Any:
        if isinstance(obj, (set, frozenset)):
            return sorted(obj, key=lambda v: canonical_json(v, on_unstable))
        if isinstance(obj, (bytes, bytearray)):
            return {"__bytes__": hashlib.sha256(obj).hexdigest()}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {"__type__": qualname(type(obj)), "fields": dataclasses.asdict(obj)}
        text = repr(obj)
        if on_unstable is not None and _ADDRESS.search(text):
            on_unstable(type(obj).__qualname__)
        return {"__type__": qualname(type(obj)), "repr": text}

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=fallback)


def runner_identity(runner: Any, key: str | None = None) -> Any:
    """The identity a checkpoint is keyed by: ``runner`` described, plus ``key``.

    Raises:
        ConfigurationError: a part of the runner is a plain callable (or an object
            without ``identity()``) and no ``key`` was given.
    """
    described = describe(runner)
    if key is not None:
        return {"runner": described, "checkpoint_key": key}
    plain = sorted(_unversioned(described))
    if plain:
        raise ConfigurationError(
            f"checkpoint= cannot tell when stored results of {', '.join(plain)} are stale: "
            f"a plain callable does not describe itself. Pass checkpoint_key='v1' to the Pool "
            f"(and change it whenever the function's answers would change), or give the "
            f"runner an identity() method returning what its answers depend on")
    return described


def _unversioned(data: Any) -> set[str]:
    if isinstance(data, dict):
        if data.get("versioned") is False and PLAIN in data:
            return {data[PLAIN]}
        data = list(data.values())
    return set().union(*map(_unversioned, data)) if isinstance(data, list) else set()


class Checkpoint:
    """A checkpoint file for a Pool (``Pool(..., checkpoint="run.jsonl")``).

    Args:
        path: the JSONL file; created on the first run, appended to by later ones.
        fsync_interval: the longest time, in seconds, between fsyncs (0: after each line).

    Raises:
        ConfigurationError: a bad path or interval.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 fsync_interval: float = DEFAULT_FSYNC_INTERVAL):
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ConfigurationError(f"checkpoint must be a file path (e.g. 'run.jsonl'); "
                                     f"got {path!r}")
        self.path = Path(path)
        self.fsync_interval = checked(fsync_interval, "fsync_interval", NUMBER)
        if self.path.is_dir():
            raise ConfigurationError(f"checkpoint {str(self.path)!r} is a directory; name a file")

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r})"


def check_checkpoint(value: Any) -> Checkpoint | None:
    return value if value is None or isinstance(value, Checkpoint) else Checkpoint(value)


class Journal:
    """One run's view of a checkpoint: what earlier runs stored, and the file open for
    appending.

    Raises:
        ConfigurationError: the runner holds a plain callable and ``key`` is None.
        RuntimeError: another run is writing this file right now.
    """

    def __init__(self, checkpoint: Checkpoint, runner: Any, key: str | None = None):
        self._interval = checkpoint.fsync_interval
        self._path = checkpoint.path
        identity = canonical_json(runner_identity(runner, key))
        self._runner = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
        # A typed Skill's results are stored as JSON data and turned back into instances.
        self._revive = getattr(runner, "_revive_output", None)
        self._done, tail = _load(self._path)
        self._pending: dict[int, str] = {}  # index -> key, for items handed to a flow
        self._warned = False
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise RuntimeError(
                        f"checkpoint {str(self._path)!r} is being written by another run; "
                        f"give each concurrent Pool its own file") from None
            if tail == -1:
                os.write(fd, b"\n")  # a complete last line that lost only its newline
            elif tail is not None:
                os.ftruncate(fd, tail)  # cut a torn last line off: the next starts clean
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd
        self._synced = time.monotonic()

    def key(self, variables: Any) -> str:
        """The checkpoint key of one item's merged variables under this run's runner."""
        text = canonical_json(variables, self._unstable)
        # surrogatepass: a lone surrogate in the variables still makes one stable key.
        data = f"{self._runner}\0{text}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(data).hexdigest()

    def _unstable(self, type_name: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"checkpoint {str(self._path)!r}: a variable holds a {type_name} that JSON "
                f"cannot represent and whose repr changes every run, so items can never be "
                f"resumed from the checkpoint; pass plain data (str, numbers, lists, dicts)",
                RuntimeWarning, stacklevel=user_stacklevel())

    def restore(self, book: RecordBook, rec: ItemRecord) -> bool:
        """Mark ``rec`` DONE from the file when it holds the item's result; else remember
        its key for :meth:`record` and return False."""
        key = self.key(rec.variables)
        entry = self._done.get(key)
        output = None if entry is None else entry["output"]
        if entry is not None and callable(self._revive):
            try:
                output = self._revive(output)
            except Exception:  # noqa: BLE001 - a stored result that no longer validates
                entry = None
        if entry is None:
            self._pending[rec.index] = key
            return False
        book.end_now(rec, DONE, output=output, from_checkpoint=True)
        return True

    def record(self, rec: ItemRecord) -> None:
        """Append an ended item (DONE or FAILED) that this run computed."""
        key = self._pending.pop(rec.index, None)
        if key is None or rec.from_checkpoint or rec.status not in (DONE, FAILED):
            return
        entry: dict[str, Any] = {"v": FORMAT_VERSION, "key": key, "runner": self._runner[:12],
                                 "index": rec.index, "status": rec.status_name}
        if rec.status == DONE:
            entry["output"] = plain(rec.output)
        else:
            entry.update(error_type=rec.error_type,
                         error=(rec.error_message or "")[:_MAX_ERROR_CHARS])
        entry.update(usage=rec.usage.as_dict(), attempts=rec.attempts, end=rec.end,
                     duration=None if rec.duration is None else round(rec.duration, 3))
        try:
            line = json_bytes(entry, separators=(",", ":"))
        except (TypeError, ValueError):
            entry.pop("output", None)
            entry["unserialisable"] = type(rec.output).__qualname__
            line = json_bytes(entry, separators=(",", ":"), default=str)
        else:
            if rec.status == DONE:
                self._done[key] = entry
        self._write(line + b"\n")

    def close(self, book: RecordBook) -> None:
        """Write what ended DONE but was never reported (the run was interrupted), fsync
        and close. Safe to call twice."""
        if self._fd is None:
            return
        try:
            for index in sorted(self._pending):
                rec = book.get(index)
                if rec.status == DONE:
                    self.record(rec)
            os.fsync(self._fd)
        finally:
            os.close(self._fd)  # also releases the flock
            self._fd = None

    def _write(self, data: bytes) -> None:
        assert self._fd is not None, "the journal is closed"
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        now = time.monotonic()
        if now - self._synced >= self._interval:
            os.fsync(self._fd)
            self._synced = now


def _load(path: Path) -> tuple[dict[str, dict[str, Any]], int | None]:
    """(DONE entries by key, how to fix the file's tail): None (fine), a size to truncate a
    torn last line to, or -1 when the last line is complete but lacks its newline."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    *lines, last = data.split(b"\n")  # last is b"" when the file ends with a newline
    entries = [_parse(line) for line in lines if line.strip()]
    bad = entries.count(None)
    fix: int | None = None
    if last:
        entries.append(_parse(last))
        fix = -1 if entries[-1] is not None else len(data) - len(last)
        if fix >= 0:
            warnings.warn(
                f"checkpoint {str(path)!r}: ignoring a torn last line (an earlier run was "
                f"killed while writing it); that item runs again",
                RuntimeWarning, stacklevel=user_stacklevel())
    if bad:
        warnings.warn(f"checkpoint {str(path)!r}: ignored {bad} unreadable line(s)",
                      RuntimeWarning, stacklevel=user_stacklevel())
    done = {entry["key"]: entry for entry in entries
            if entry is not None and entry.get("status") == "DONE" and "output" in entry}
    return done, fix


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json_loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return None
    if not isinstance(entry, dict) or entry.get("v") != FORMAT_VERSION \
            or not isinstance(entry.get("key"), str):
        return None
    return entry
