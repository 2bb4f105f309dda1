"""``python -m yait_aichain``: the same command line as ``yait-aichain``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
