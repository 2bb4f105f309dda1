"""Models: one provider model behind one thread-safe ``generate()`` call.

    from yait_aichain.models import Model
    model = Model("claude-sonnet-4-6", api_key=...)
    model.generate("Say hi").output
"""

from .._usage import Usage
from . import registry
from ._model import Model
from ._prices import Price
from ._values import Generation, Timeout
from ._retry import RetryPolicy
from .providers._base import OutputSpec

__all__ = ["Generation", "Model", "OutputSpec", "Price", "RetryPolicy", "Timeout", "Usage",
           "registry"]
