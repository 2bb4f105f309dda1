"""Where a Pool's items come from, and how shared variables are merged into each one."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..chain import Chain
from ..errors import ChainStepError

# Values of these types cannot be mutated, so flows may share them without a copy.
_IMMUTABLE = (str, bytes, int, float, complex, bool, type(None), frozenset)


def item_type_error(index: int, item: Any) -> TypeError:
    # Name the type, never the value: items often carry documents or personal data.
    return TypeError(f"Pool item {index} must be a dict of variables; got "
                     f"{type(item).__name__}. Wrap a bare value as {{'input': value}}.")


def check_chain_items(runner: Any, items: list[Any] | None, shared: Mapping[str, Any] | None,
                      first: int = 0) -> None:
    """For a Chain runner, walk its steps against each distinct set of item keys (plus
    the shared variables) before any item starts, so a step reading a variable nothing
    provides fails at once, not after every item paid for the steps before it. A lazy
    iterable (``items`` None) is checked by the Run on its first item (index ``first``).

    Raises:
        ChainStepError: naming the first item whose keys lack the variable.
    """
    if not isinstance(runner, Chain) or runner.on_step_error != "raise" or items is None:
        return
    base = set(shared or {})
    firsts: dict[frozenset[str], int] = {}  # each distinct set of keys, at its first item
    for index, item in enumerate(items, start=first):
        firsts.setdefault(frozenset(item), index)
    for keys, index in firsts.items():
        try:
            runner.check_variables(base | keys)
        except ChainStepError as exc:
            err = ChainStepError(f"Pool item {index}: {exc}", step=exc.step, name=exc.name)
            raise err from exc.__cause__


class ItemSource:
    """The items of a Pool: a list or tuple checked in full now, or any other iterable
    pulled on demand (the items seen are kept, so failed ones can run again)."""

    def __init__(self, items: Any):
        self.lazy = not isinstance(items, (list, tuple))
        self.seen: list[Any] = [] if self.lazy else list(items)
        self._iterable: Iterable[Any] = items  # read only when lazy
        self._it: Iterator[Any] | None = None
        self._exhausted = False
        if not self.lazy:
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise item_type_error(i, item)
            return
        if isinstance(items, (Mapping, str, bytes, bytearray)) or not isinstance(items, Iterable):
            hint = " (wrap a single item in a list)" if isinstance(items, Mapping) else ""
            raise TypeError("Pool items must be a list of dicts or an iterable of dicts; got "
                            f"{type(items).__name__}{hint}")

    @property
    def count(self) -> int | None:
        """The number of items, or None while a lazy iterable is not exhausted."""
        return len(self.seen) if not self.lazy or self._exhausted else None

    def fresh(self) -> tuple[list[Any], Iterator[tuple[int, Any]]]:
        """A full run: the items known now (their records start PENDING) and the plan."""
        if not self.lazy:
            return self.seen, iter(enumerate(self.seen))
        started = self._it is not None or self._exhausted
        it = iter(self._iterable)
        if started and it is self._iterable:
            # A one-shot iterator that was already (partly) consumed: run again what was
            # seen, then go on with the rest.
            return self.seen, itertools.chain(enumerate(list(self.seen)), self._pull())
        # Never run, or re-iterable (a view, a custom collection): start a new pass.
        self.seen, self._it, self._exhausted = [], it, False
        return [], self._pull()

    def retry(self, indices: list[int]) -> Iterator[tuple[int, Any]]:
        """Run the given seen items again, then whatever a lazy iterable has left."""
        again = ((i, self.seen[i]) for i in indices)
        if self.lazy and not self._exhausted:
            if self._it is None:
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
            self.seen.append(item)
            yield len(self.seen) - 1, item


class SharedVariables:
    """The ``variables`` of one run, merged under each item (the item wins). Every flow
    gets its own deep copy of mutable values; those that cannot be deep-copied (locks,
    clients, open files) are shared as they are."""

    def __init__(self, variables: Any):
        variables = {} if variables is None else variables
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
