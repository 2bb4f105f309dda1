"""``run --schema FILE`` (typed answers) and ``--output FILE.csv`` (a table, one column per
field) for the batch command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..pool._rows import FACT_COLUMNS, flat_fields, write_csv
from ..skills._typed import DEFAULT_MAX_REASKS
from ._common import EXIT_FAILED, CliError, non_negative_int, read_text
from ._files import id_key

__all__ = ["CsvResults", "add_typed_arguments", "output_arguments"]


def add_typed_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", metavar="FILE",
                   help="a JSON Schema file: each answer is JSON matching it (validated, and "
                        "re-asked with the errors when it does not); the result line's "
                        "\"output\" is the parsed object")
    p.add_argument("--max-reasks", type=non_negative_int, default=DEFAULT_MAX_REASKS,
                   metavar="N", help="times an answer that fails --schema is sent back "
                                     "(default: %(default)s); then the item FAILS")


def output_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The Skill keywords for ``--schema``/``--max-reasks``."""
    if not args.schema:
        return {"max_reasks": args.max_reasks}
    try:
        schema = json.loads(read_text(args.schema, "--schema"))
    except ValueError as exc:
        raise CliError(f"--schema {args.schema} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise CliError(f"--schema {args.schema} must hold a JSON Schema object, got "
                       f"{type(schema).__name__}")
    name = Path(args.schema).stem or "response"
    return {"output": {"format": {"type": "json_schema", "schema": schema, "name": name}},
            "max_reasks": args.max_reasks}


class CsvResults:
    """Collects result lines and writes them as one table at the end, in input order:
    ``id``, ``status``, the output's fields (dotted names for nested objects, lists and
    objects as JSON), then the error, attempts, re-asks, usage and duration."""

    def __init__(self, path: str, ids: list[Any]):
        self.path = path
        self.count = 0
        self._order = {id_key(item_id): n for n, item_id in enumerate(ids)}
        self._rows: list[tuple[int, dict[str, Any]]] = []
        self._delimiter = "\t" if path.lower().endswith(".tsv") else ","

    def write(self, line: dict[str, Any]) -> None:
        error = line["error"] or {}
        facts = {**line, **line["usage"], "error_type": error.get("type"),
                 "error": error.get("message")}
        row: dict[str, Any] = {"id": line["id"], "status": line["status"]}
        for name, value in flat_fields(line["output"]).items():
            row[f"output.{name}" if name in ("id", *FACT_COLUMNS) else name] = value
        row.update((name, facts[name]) for name in FACT_COLUMNS[2:])  # after index, status
        position = self._order.get(id_key(line["id"]), len(self._order))
        self._rows.append((position, row))
        self.count += 1

    def close(self) -> None:
        rows = [row for _, row in sorted(self._rows, key=lambda pair: pair[0])]
        try:
            with open(self.path, "w", encoding="utf-8", newline="") as stream:
                write_csv(rows, stream, delimiter=self._delimiter)
        except OSError as exc:
            raise CliError(f"cannot write --output {self.path}: {exc.strerror or exc}",
                           EXIT_FAILED) from None
