"""Input rows in (JSONL or CSV), result lines out, and what an earlier run already did.

Result lines are the contract with the user's scripts: one JSON object per line,
written with a single ``write`` call on an unbuffered file and never rewritten, so an
interrupted run (Ctrl-C, a kill, a full disk) leaves only whole lines, and a crash in the
middle of a line leaves a tail that ``--resume`` cuts off before appending.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from .._text import json_bytes, json_loads
from ..pool import DONE, ItemRecord
from ._common import CliError


@dataclass
class Items:
    """The rows to run and their ids (the --id value, else the 1-based line number)."""

    ids: list[Any] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # where each row starts, for messages
    unit: str = "line"  # what those numbers count: lines, or rows of a CSV file


def id_key(item_id: Any) -> str:
    """A hashable key that tells ``7`` and ``"7"`` apart, as the JSON output does."""
    return json.dumps(item_id, sort_keys=True)


def is_csv(path: str) -> bool:
    """Whether a file name says CSV (or TSV) rather than JSON lines; ``-`` says neither."""
    return path != "-" and path.lower().endswith((".csv", ".tsv"))


@contextmanager
def _input(path: str) -> Iterator[Any]:
    """The input as text (``-``: stdin), its read, decoding and CSV errors as CliErrors."""
    encoding = "utf-8-sig"  # -sig: Excel's UTF-8 starts with a BOM
    try:
        with (nullcontext(io.TextIOWrapper(sys.stdin.buffer, encoding=encoding, newline=""))
              if path == "-" else open(path, encoding=encoding, newline="")) as stream:
            yield stream
    except OSError as exc:
        raise CliError(f"cannot read --input {path}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise CliError(f"{path}: not readable as CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text ({exc.reason})") from None


def _jsonl_rows(stream: io.TextIOBase, path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = json_loads(line)
        except ValueError as exc:
            raise CliError(f"{path}, line {number}: not valid JSON ({getattr(exc, 'msg', exc)}); "
                           "each line must be one JSON object like {\"text\": \"...\"}") from None
        if not isinstance(row, dict):
            raise CliError(f"{path}, line {number}: expected a JSON object, got "
                           f"{type(row).__name__}; each line must look like "
                           "{\"text\": \"...\"}")
        yield number, row


def _csv_rows(stream: io.TextIOBase, path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    dialect = "excel-tab" if path.lower().endswith(".tsv") else "excel"
    reader = csv.DictReader(stream, dialect=dialect, restval="")
    if not reader.fieldnames:
        raise CliError(f"{path} is empty or has no header row; the first row must name "
                       "the columns, e.g. id,text")
    for number, row in enumerate(reader, start=1):
        row.pop(None, None)  # cells beyond the header have no column name
        yield number, row


def read_items(path: str, fmt: str | None, id_column: str | None, limit: int | None) -> Items:
    """Read the rows (the first ``limit`` when given) and give each its id; ``fmt`` is
    "csv" or "jsonl" (--format), None: CSV when the file name says so, else JSON lines.

    Raises:
        CliError: unreadable input, a row that is not an object, a row without the
            ``--id`` column, an id that is not a string or integer, or a duplicate id.
    """
    table = fmt == "csv" if fmt else is_csv(path)
    items = Items(unit="row" if table else "line")
    seen: dict[str, int] = {}
    where = items.unit
    with _input(path) as stream:
        rows = (_csv_rows if table else _jsonl_rows)(stream, path)
        for number, row in itertools.islice(rows, limit):
            item_id: Any = number
            if id_column is not None:
                if id_column not in row:
                    raise CliError(f"--id {id_column}: {path} {where} {number} has no column "
                                   f"{id_column!r}; its columns are {', '.join(map(repr, row))}")
                item_id = row[id_column]
                if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
                    raise CliError(f"--id {id_column}: {path} {where} {number} has "
                                   f"{item_id!r}; ids must be strings or integers")
                key = id_key(item_id)
                if key in seen:
                    raise CliError(f"--id {id_column}: {path} {where}s {seen[key]} and "
                                   f"{number} share the id {item_id!r}; ids must be unique "
                                   "for --resume")
                seen[key] = number
            items.ids.append(item_id)
            items.rows.append(row)
            items.lines.append(number)
    return items


def check_columns(items: Items, needed: frozenset[str], path: str) -> None:
    """Every row must have every template variable, or nothing is sent.

    Raises:
        CliError: names the first missing column and how many rows lack it.
    """
    missing: dict[str, list[int]] = {}  # column -> the positions of the rows without it
    for position, row in enumerate(items.rows):
        for name in needed - row.keys():
            missing.setdefault(name, []).append(position)
    if not missing:
        return
    name, *others = sorted(missing)
    first, count = missing[name][0], len(missing[name])
    more = f" (and {count - 1:,} more)" if count > 1 else ""
    also = f" (also missing: {', '.join(others)})" if others else ""
    have = ", ".join(map(repr, items.rows[first])) or "none"
    raise CliError(
        f"the prompt uses {{{name}}} but {path} {items.unit} {items.lines[first]}{more} has no "
        f"{name!r} column{also}; its columns are {have}. Rename the column or change the prompt"
    )


@dataclass
class Previous:
    """What an earlier run left in the output file."""

    torn_at: int | None = None  # the size that cuts off a torn last line, when there is one
    # The "run" fingerprint of each DONE id's latest line (None: a line without one).
    done_runs: dict[str, str | None] = field(default_factory=dict)
    identities: dict[str, Any] = field(default_factory=dict)  # fingerprint -> settings
    done_lines: dict[str, dict[str, Any]] = field(default_factory=dict)  # id key -> its line

    def done_elsewhere(self, current: str) -> dict[str, int]:
        """How many DONE ids came from another run's settings, by that run's fingerprint
        (lines written before runs were recorded have none and are not counted)."""
        return Counter(run for run in self.done_runs.values() if run is not None and run != current)


def _run_of(line: dict[str, Any]) -> str | None:
    return line.get("run") if isinstance(line.get("run"), str) else None


def read_previous(path: str) -> Previous:
    """Read an earlier output file; the last line for an id decides its status."""
    prev = Previous()
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return prev
    except OSError as exc:
        raise CliError(f"cannot read --output {path} to resume: {exc.strerror or exc}") from None
    body, _, tail = data.rpartition(b"\n")
    prev.torn_at = len(data) - len(tail) if tail.strip() else None
    latest: dict[str, dict[str, Any] | None] = {}  # id key -> its last line, when DONE
    for raw in body.split(b"\n"):
        if not raw.strip():
            continue
        try:
            line = json_loads(raw)
            latest[id_key(line["id"])] = line if line["status"] == "DONE" else None
        except (ValueError, KeyError, TypeError):
            continue  # not a result line: an earlier crash, or not ours
        run = _run_of(line)
        if run is not None and isinstance(line.get("run_identity"), dict):
            prev.identities[run] = line["run_identity"]
    prev.done_lines = {key: line for key, line in latest.items() if line is not None}
    prev.done_runs = {key: _run_of(line) for key, line in prev.done_lines.items()}
    return prev


def job_records(ran: list[Any], items: Items, todo: list[int], previous: Previous) -> list[Any]:
    """One record per input item, in input order: those of this run (``ran``, parallel to
    ``todo``) and, for the others, a reused record rebuilt from the output file's DONE line
    (``from_checkpoint=True``: not run now, so left out of the timings)."""
    by_position = dict(zip(todo, ran, strict=True))
    records = []
    for position, item_id in enumerate(items.ids):
        rec = by_position.get(position)
        if rec is not None:
            records.append(replace(rec, index=position))
            continue
        line = previous.done_lines.get(id_key(item_id), {})
        records.append(ItemRecord(position, {}, status=DONE, output=line.get("output"),
                                  from_checkpoint=True, duration=0.0))
    return records


def result_line(item_id: Any, rec: Any) -> dict[str, Any]:
    """The output object of one ended item."""
    error = None if rec.error is None else {"type": rec.error_type, "message": rec.error_message}
    return {
        "id": item_id,
        "status": rec.status_name,
        "output": rec.output if rec.status == DONE else None,
        "error": error,
        "usage": rec.usage.as_dict(),
        "attempts": rec.attempts,
        "reasks": rec.reasks,
        "duration": None if rec.duration is None else round(rec.duration, 3),
    }


class ResultWriter:
    """Appends one JSON line per call, each with one unbuffered write.

    ``run`` (a fingerprint) goes into every line and ``identity`` into the first one this
    writer writes, so the file itself says which settings produced each answer."""

    def __init__(self, path: str, *, append: bool, run: str, identity: dict[str, Any]):
        self.path = path
        self.count = 0
        self._run, self._identity = run, identity
        self._owned = path != "-"
        self._stream: BinaryIO = sys.stdout.buffer
        if self._owned:
            try:
                self._stream = open(path, "ab" if append else "wb", buffering=0)  # noqa: SIM115
            except OSError as exc:
                raise CliError(f"cannot write --output {path}: {exc.strerror or exc}") from None

    def write(self, obj: dict[str, Any]) -> None:
        obj = {**obj, "run": self._run}
        if self.count == 0:
            obj["run_identity"] = self._identity
        data = json_bytes(obj, default=str) + b"\n"  # any str, lone surrogates too
        view = memoryview(data)
        while view:  # a regular file takes it all at once; a pipe may take it in parts
            view = view[self._stream.write(view):]  # (an error raises OSError, never 0)
        if not self._owned:
            self._stream.flush()
        self.count += 1

    def close(self) -> None:
        if self._owned:
            self._stream.close()


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: the same inode (hard links, symlinks), or, when
    either does not exist yet, the same resolved path (a symlink to a file not yet
    written, ``./x`` and ``x``). ``-`` (stdin/stdout) is never a file here."""
    if a == "-" or b == "-":
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def check_distinct(paths: dict[str, str | None]) -> None:
    """Refuse, before anything is read or sent, two of ``{flag: path}`` that are one file:
    writing the report or the results over the input (or each other) destroys data.

    Raises:
        CliError: names both flags and both paths.
    """
    given = [(flag, path) for flag, path in paths.items() if path]
    for (flag_a, a), (flag_b, b) in itertools.combinations(given, 2):
        if same_file(a, b):
            raise CliError(f"{flag_a} {a} and {flag_b} {b} are the same file (or links to one); "
                           "writing one would overwrite the other, so give them different files")
