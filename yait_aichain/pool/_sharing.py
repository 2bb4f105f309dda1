"""Two decisions a live run makes about a Skill runner before it starts an item: items
whose rendered requests are byte-equal are sent once (the others share the answer,
``shared=True``), and when the Skill marks a prefix for the prompt cache one item runs alone
first, so the others read the cache it wrote instead of all paying to write it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..models._model import Model
from ..skills._skill import Skill
from ._checkpoint import canonical_json
from ._record import ItemRecord

__all__ = ["Sharing", "real_model"]


def _skill_of(runner: Any) -> Skill | None:
    """The Skill whose requests the runner sends first (itself, or a Chain's first step)."""
    if isinstance(runner, Skill):
        return runner
    steps = getattr(runner, "normalized_steps", None)
    if steps and isinstance(steps[0].runner, Skill) and not steps[0].input_map:
        return steps[0].runner
    return None


class Sharing:
    """The live run's memo of request keys and its cache warm-up (calling thread only)."""

    def __init__(self, runner: Any):
        skill = _skill_of(runner)
        self._skill = skill if isinstance(runner, Skill) and real_model(skill) else None
        self.warm_up = skill is not None and skill.caches_prefix  # until an item ends
        self._leaders: dict[str, int] = {}
        self._followers: dict[int, list[ItemRecord]] = {}

    def may_start(self, in_flight: int) -> bool:
        """False while the cache-writing first item is still on its way."""
        return not (self.warm_up and in_flight >= 1)

    def follows(self, rec: ItemRecord) -> int | None:
        """The index of an earlier item that sends the very same request (``rec`` waits for
        it, or takes its answer if it has ended), or None."""
        key = self._key(rec.variables)
        leader = rec.index if key is None else self._leaders.setdefault(key, rec.index)
        if leader == rec.index:
            return None
        self._followers.setdefault(leader, []).append(rec)
        return leader

    def followers(self, leader: int) -> list[ItemRecord]:
        """The records that wait for ``leader``'s answer (each returned once)."""
        return self._followers.pop(leader, [])

    def _key(self, variables: dict[str, Any]) -> str | None:
        skill = self._skill
        if skill is None:
            return None
        try:
            messages = skill.render(variables)
            wire = skill.model.build_request(messages, skill.output, **skill.options)
        except Exception:  # noqa: BLE001 - the item itself will fail with the reason
            return None
        text = canonical_json([skill.model.base_url, wire.path, wire.body])
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()  # any str


def real_model(skill: Skill | None) -> bool:
    """A Skill whose model is a real :class:`Model` (not a stand-in overriding generate)."""
    return skill is not None and isinstance(skill.model, Model) \
        and type(skill.model).generate is Model.generate
