"""Item status codes: an IntEnum with the public project's values (code comparing with
``2`` or storing it in JSON keeps working; CANCELLED is ours) that prints by name."""

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

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        # f"{status}" reads the name; f"{status:d}" and other int specs keep the number.
        return self.name if not spec else int.__format__(int(self), spec)


PENDING, RUNNING, DONE, FAILED, CANCELLED = Status

STATUS_NAMES = {code: code.name for code in Status}

# An item in one of these states will not change again during the current run.
FINAL = frozenset({DONE, FAILED, CANCELLED})


def empty_counts() -> dict[Status, int]:
    return dict.fromkeys(Status, 0)
