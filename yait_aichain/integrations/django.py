"""Django: run a Pool from a management command without leaking database connections.

Django opens one database connection per thread and closes them only at the end of a
request, or of a command run from the shell (``call_command`` closes nothing), so Pool
worker threads that touch the ORM pile up open connections ("too many clients" on
PostgreSQL or MySQL). Read plain values in the command, call the LLM in the workers,
write results in ``on_item_done`` (the command's own thread)::

    pool = Pool(runner, items, max_flows=8,
                worker_context=close_db_connections,  # each item closes what its thread opened
                on_item_done=save, progress=command_progress(self))

Call ``Pool.run()`` from synchronous code only (from an async view, through
``asgiref.sync.sync_to_async``); size a pooled database for ``max_flows + 1`` connections.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["close_db_connections", "command_progress"]


@contextlib.contextmanager
def close_db_connections() -> Iterator[None]:
    """Around one Pool item: drop stale connections on entry, close this thread's on exit.
    Pass the function itself as ``worker_context=`` (it pickles for ``Pool(executor=...)``
    too); ImportError without Django."""
    from django.db import close_old_connections, connections

    # Connections are per thread: these calls touch only the worker thread's own.
    close_old_connections()
    try:
        yield
    finally:
        # close_all(), not close_old_connections(): with CONN_MAX_AGE > 0 the latter keeps
        # the connection, and nobody would ever close it in a pool thread.
        connections.close_all()


class _Unended:
    """A command's ``stdout`` that writes exactly what it is given (``OutputWrapper`` adds a
    newline to every write: a progress line rewritten with ``\\r`` would become many)."""

    def __init__(self, wrapper: Any):
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")

    def flush(self) -> None:
        self._wrapper.flush()

    def isatty(self) -> bool:
        return True


def command_progress(command: Any, verbosity: int | None = None) -> Any:
    """The ``progress=`` value for a Pool run by ``command`` (``self`` in ``handle``): a
    stream over its stdout when that is a terminal and ``verbosity`` (``options
    ["verbosity"]``) is not 0, else False (logs, pipes and ``call_command`` stay clean)."""
    stdout = command.stdout
    isatty = getattr(stdout, "isatty", None)
    if (verbosity is not None and verbosity < 1) or not callable(isatty) or not isatty():
        return False
    return _Unended(stdout)
