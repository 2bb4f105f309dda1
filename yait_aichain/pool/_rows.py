"""Flat rows from item records, for ``pandas.DataFrame(rows)`` or CSV (without pandas).

A row holds the item's facts (:data:`FACT_COLUMNS`, ``status`` by name) and its output's
fields: a pydantic instance or dict flattened to dotted names (``customer.name``), a list as
one value (JSON in a CSV cell), any other output as ``output``. A field whose name a fact
column takes is prefixed ``output.``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from typing import IO, Any

from .._template import json_data as plain

__all__ = ["FACT_COLUMNS", "flat_fields", "item_row", "plain", "write_csv"]

FACT_COLUMNS = ("index", "status", "error_type", "error", "attempts", "reasks",
                "input_tokens", "output_tokens", "total_tokens", "cost", "duration")
_MAX_DEPTH = 32


def flat_fields(output: Any) -> dict[str, Any]:
    """The output's columns: dotted names for nested objects, ``output`` for a value."""
    data = plain(output)
    if not isinstance(data, Mapping):
        return {} if data is None else {"output": data}
    out: dict[str, Any] = {}
    _flatten(data, "", out, 0)
    return out


def _flatten(data: Mapping[str, Any], prefix: str, out: dict[str, Any], depth: int) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and depth < _MAX_DEPTH:
            _flatten(value, f"{name}.", out, depth + 1)
        else:
            out[name] = value


def item_row(rec: Any) -> dict[str, Any]:
    """One record (an ItemRecord) as a flat row."""
    facts = {**rec.as_dict(), **rec.usage.as_dict(), "status": rec.status_name}
    row = {name: facts[name] for name in FACT_COLUMNS}
    for name, value in flat_fields(rec.output).items():
        row[f"output.{name}" if name in row else name] = value
    return row


def write_csv(rows: list[dict[str, Any]], stream: IO[str], delimiter: str = ",") -> None:
    """Rows as CSV with a header: one column per field; lists and objects as JSON."""
    # Every column in first-seen order: failed items lack the output fields.
    columns = list(dict.fromkeys(name for row in rows for name in row))
    writer = csv.DictWriter(stream, fieldnames=columns, delimiter=delimiter)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})


def _cell(value: Any) -> Any:  # csv writes None as an empty cell itself
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value
