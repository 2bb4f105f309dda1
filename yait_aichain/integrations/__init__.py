"""Helpers for running Pools inside other frameworks.

Each submodule imports its framework lazily, so yait_aichain never depends on it:

- :mod:`yait_aichain.integrations.django`: close the database connections that Pool
  worker threads open, and draw progress in management commands.
"""

__all__: list[str] = []
