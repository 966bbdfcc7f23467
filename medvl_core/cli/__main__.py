"""`python -m medvl_core.cli`: the `medvl` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
