"""`python -m tinyapi` (and the frozen binary's entry point)."""

import sys

from tinyapi.cli import main

if __name__ == "__main__":
    sys.exit(main())
