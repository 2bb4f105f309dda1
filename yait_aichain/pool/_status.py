"""Item status codes.

The values are plain ints so that code written against the public yait_aichain project
(``pool.status[DONE]``) keeps working; CANCELLED is our addition.
"""

from __future__ import annotations

PENDING = 0
RUNNING = 1
DONE = 2
FAILED = 3
CANCELLED = 4

STATUS_NAMES = {PENDING: "PENDING", RUNNING: "RUNNING", DONE: "DONE", FAILED: "FAILED",
                CANCELLED: "CANCELLED"}

# An item in one of these states will not change again during the current run.
FINAL = frozenset({DONE, FAILED, CANCELLED})


def empty_counts() -> dict[int, int]:
    """A status dict with every key present, all zero."""
    return {code: 0 for code in STATUS_NAMES}
