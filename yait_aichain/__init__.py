"""yait_aichain: turn a for-loop of LLM calls into an ordered parallel map."""

import logging

__version__ = "0.1.0.dev0"

logging.getLogger("yait_aichain").addHandler(logging.NullHandler())
