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

    Pass the function itself as ``Pool(..., worker_context=close_db_connections)``. It is a
    module-level function, so it also pickles for ``Pool(executor=...)``.

    Raises:
        ImportError: Django is not installed.
    """
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
    """A management command's ``stdout`` that writes exactly what it is given:
    ``OutputWrapper`` appends a newline to every write, which would turn a progress line
    that rewrites itself with ``\\r`` into one line per update."""

    def __init__(self, wrapper: Any):
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")

    def flush(self) -> None:
        self._wrapper.flush()

    def isatty(self) -> bool:
        return True


def command_progress(command: Any, verbosity: int | None = None) -> Any:
    """The ``progress=`` value for a Pool run by a management command.

    Args:
        command: the ``BaseCommand`` instance (``self`` in ``handle``).
        verbosity: ``options["verbosity"]``; 0 turns progress off.

    Returns:
        A stream over ``command.stdout`` when it is a terminal and verbosity is at least
        1, else False (no progress: logs, pipes and ``call_command`` stay clean).
    """
    stdout = command.stdout
    isatty = getattr(stdout, "isatty", None)
    if (verbosity is not None and verbosity < 1) or not callable(isatty) or not isatty():
        return False
    return _Unended(stdout)
