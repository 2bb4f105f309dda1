"""Item status codes.

An IntEnum with the public project's values, so code written against it keeps working
(``pool.status[DONE]``, ``rec.status == 2``, JSON holding ``2``); CANCELLED is our
addition. ``repr``, ``str`` and an empty format spec read the name (``DONE``), so
``pool.status`` prints ``{PENDING: 0, RUNNING: 0, DONE: 98, ...}`` and a DataFrame of
``pool.history`` shows ``DONE`` rather than ``2``.
"""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """The state of one Pool item."""

    PENDING = 0
    RUNNING = 1
    DONE = 2
    FAILED = 3
    CANCELLED = 4

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        # f"{status}" reads the name; f"{status:d}" and other int specs keep the number.
        return self.name if not spec else int.__format__(int(self), spec)


PENDING = Status.PENDING
RUNNING = Status.RUNNING
DONE = Status.DONE
FAILED = Status.FAILED
CANCELLED = Status.CANCELLED

STATUS_NAMES = {code: code.name for code in Status}

# An item in one of these states will not change again during the current run.
FINAL = frozenset({DONE, FAILED, CANCELLED})


def empty_counts() -> dict[Status, int]:
    """A status dict with every key present, all zero."""
    return {code: 0 for code in Status}
