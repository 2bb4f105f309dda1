"""Helpers for running Pools inside other frameworks; each submodule imports its framework
lazily, so yait_aichain never depends on it. :mod:`yait_aichain.integrations.django` closes
the database connections that Pool worker threads open and draws progress in commands.
"""

__all__: list[str] = []
