"""`medvl` command line: list, run, batch, compare, claims, refresh, summary, check-data, prepare (`medvl --help`).

`main` is the console script; `parser` builds the arguments, `run` executes a notebook into a run folder,
`batch` runs sweeps, `commands` holds the other subcommands.
"""

from __future__ import annotations

import sys

from ..errors import MedvlError, UsageError
from .parser import build_parser
from .run import EXIT_FAILED, EXIT_USAGE


def main(argv=None) -> int:
    """Entry point of the `medvl` console script: 0 ok, 1 failed, 2 usage error."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error printed by argparse
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return args.func(args)
    except MedvlError as exc:
        print(f"medvl: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED
