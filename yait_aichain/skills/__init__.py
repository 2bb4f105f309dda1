"""Skills: a prompt template plus a model."""

from ._skill import Skill

__all__ = ["Skill"]
