"""Where a Pool's items come from, and how shared variables are merged into each one."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# Values of these types cannot be mutated, so flows may share them without a copy.
_IMMUTABLE = (str, bytes, int, float, complex, bool, type(None), frozenset)


def item_type_error(index: int, item: Any) -> TypeError:
    # Name the type, never the value: items often carry documents or personal data.
    return TypeError(
        f"Pool item {index} must be a dict of variables; got {type(item).__name__}. "
        f"Wrap a bare value as {{'input': value}}."
    )


def check_chain_items(
    runner: Any, items: list[Any] | None, shared: Mapping[str, Any] | None, first: int = 0
) -> None:
    """For a Chain runner, walk its steps against each distinct set of item keys (plus
    the shared variables) before any item starts, so a step reading a variable nothing
    provides fails the run at once instead of after every item paid for the steps before
    it. A lazy iterable (``items`` None) is checked when its first item is pulled (the Run
    calls this with that item; ``first`` is its index).

    Raises:
        ChainStepError: from ``Chain.check_variables``, prefixed with the first item
            index whose keys lack the variable.
    """
    from ..chain import Chain
    from ..errors import ChainStepError

    if not isinstance(runner, Chain) or runner.on_step_error != "raise" or items is None:
        return
    base = set(shared or {})
    seen: set[frozenset[str]] = set()
    for index, item in enumerate(items, start=first):
        keys = frozenset(item)
        if keys in seen:
            continue
        seen.add(keys)
        try:
            runner.check_variables(base | keys)
        except ChainStepError as exc:
            err = ChainStepError(f"Pool item {index}: {exc}", step=exc.step, name=exc.name)
            raise err from exc.__cause__


class ItemSource:
    """The items of a Pool: a checked list, or a lazy iterable pulled on demand.

    A list or tuple is checked in full at construction (a non-dict is a TypeError before
    anything runs). Any other iterable is consumed lazily; the items seen so far are kept
    so that failed ones can be run again.
    """

    def __init__(self, items: Any):
        if isinstance(items, (list, tuple)):
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise item_type_error(i, item)
            self.lazy = False
            self._seen: list[Any] = list(items)
            self._iterable: Iterable[Any] | None = None
            return
        if isinstance(items, (Mapping, str, bytes, bytearray)) or not isinstance(items, Iterable):
            hint = " (wrap a single item in a list)" if isinstance(items, Mapping) else ""
            raise TypeError(
                "Pool items must be a list of dicts or an iterable of dicts; got "
                f"{type(items).__name__}{hint}"
            )
        self.lazy = True
        self._seen = []
        self._iterable = items
        self._it: Iterator[Any] | None = None
        self._exhausted = False

    @property
    def count(self) -> int | None:
        """The number of items, or None while a lazy iterable is not exhausted."""
        if not self.lazy or self._exhausted:
            return len(self._seen)
        return None

    @property
    def seen(self) -> list[Any]:
        return self._seen

    def fresh(self) -> tuple[list[Any], Iterator[tuple[int, Any]]]:
        """A full run: the items known now (their records start PENDING) and the plan."""
        if not self.lazy:
            return self._seen, iter(enumerate(self._seen))
        started = self._it is not None or self._exhausted
        assert self._iterable is not None  # lazy
        it = iter(self._iterable)
        if started and it is self._iterable:
            # A one-shot iterator that was already (partly) consumed: run again what was
            # seen, then go on with the rest.
            return self._seen, itertools.chain(enumerate(list(self._seen)), self._pull())
        # Never run, or re-iterable (a view, a custom collection): start a new pass.
        self._seen, self._it, self._exhausted = [], it, False
        return [], self._pull()

    def retry(self, indices: list[int]) -> Iterator[tuple[int, Any]]:
        """Run the given seen items again, then whatever a lazy iterable has left."""
        again = ((i, self._seen[i]) for i in indices)
        if self.lazy and not self._exhausted:
            if self._it is None:
                assert self._iterable is not None  # lazy
                self._it = iter(self._iterable)
            return itertools.chain(again, self._pull())
        return again

    def _pull(self) -> Iterator[tuple[int, Any]]:
        while self._it is not None:
            try:
                item = next(self._it)
            except StopIteration:
                self._it, self._exhausted = None, True
                return
            self._seen.append(item)
            yield len(self._seen) - 1, item


class SharedVariables:
    """The ``variables`` of one run, merged under each item (the item wins).

    Every flow gets its own deep copy of mutable values, so one flow mutating a shared
    list never shows up in another. Values that cannot be deep-copied (locks, clients,
    open files) are shared as they are.
    """

    def __init__(self, variables: Any):
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            raise TypeError(f"variables must be a dict or None; got {type(variables).__name__}")
        self.source = variables
        self._plain: dict[str, Any] = {}
        self._mutable: dict[str, Any] = {}
        for key, value in variables.items():
            if isinstance(value, _IMMUTABLE):
                self._plain[key] = value
                continue
            try:
                # Snapshot now: a caller changing the dict during the run changes nothing.
                self._mutable[key] = copy.deepcopy(value)
            except Exception:  # noqa: BLE001  any user object: an uncopyable one is shared as is
                self._plain[key] = value

    def merge(self, item: dict[str, Any]) -> dict[str, Any]:
        merged = dict(self._plain)
        if self._mutable:
            merged.update(copy.deepcopy(self._mutable))
        merged.update(item)
        return merged
