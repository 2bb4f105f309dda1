"""``python -m yait_aichain``: the same command line as ``yait-aichain``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
