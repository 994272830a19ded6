"""``slahmr-opt``: run, fit, demo, eval, bench, ablate, export and render.

One module per command (``run``, ``fit``, ``demo``, ``eval``, ``bench``, ``ablate``, ``export``,
``render``), each with ``add_parser(subparsers)`` and its handler; ``common`` holds what several
commands share; ``main`` builds the parser and holds the one error boundary: errors a user can
fix (bad files, bad config) end with a one-line message naming the file and the problem, and
exit code 2; nothing is written as if complete.
"""

from slahmr_opt.cli.common import EXAMPLE_DIR
from slahmr_opt.cli.main import build_parser, main

__all__ = ["EXAMPLE_DIR", "build_parser", "main"]
