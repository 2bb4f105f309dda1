"""Chain: run Skills, Tools, nested Chains and callables in sequence over shared variables."""

from ._chain import Chain, ChainRun, StepRecord

__all__ = ["Chain", "ChainRun", "StepRecord"]
