"""The ``slahmr-opt`` parser and its one error boundary.

Every command runs inside ``main``'s boundary: an error a user can fix (a ``SlahmrOptError``: bad
input file, bad config, an output that exists; or an ``OSError`` such as a read-only folder)
ends with one line naming the file and the problem and exit code 2; anything else ends with one
line and exit code 1. ``--debug`` adds the traceback. Commands raise, they never print errors.
"""

import argparse
import logging
import sys
import traceback
from pathlib import Path

from slahmr_opt import __version__
from slahmr_opt.cli import ablate, bench, demo, export, fit, render, run
from slahmr_opt.cli import eval as evaluate
from slahmr_opt.errors import SlahmrOptError

#: The command modules, in the order ``--help`` lists them; each has ``add_parser(subparsers)``,
#: which sets the parser's ``handler`` default.
COMMANDS = (run, fit, demo, evaluate, bench, ablate, export, render)

PROG = "slahmr-opt"
DESCRIPTION = "run, fit, demo, eval, bench, ablate, export and render."


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """Accept ``--debug`` after every (sub-)command too; SUPPRESS keeps the top level's value."""
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_debug(child)


def build_parser() -> argparse.ArgumentParser:
    """The ``slahmr-opt`` parser with every command's sub-parser."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_argument("--debug", action="store_true", help="on an error, print the traceback too")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    for child in sub.choices.values():
        _add_debug(child)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse, letting ``key=value`` overrides come anywhere (``run VIDEO --out D key=value``:
    argparse alone gives every positional to ``VIDEO``'s chunk)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides = getattr(args, "overrides", None)
    if extra and (overrides is None or any("=" not in e or e.startswith("-") for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*overrides, *extra]
    videos = getattr(args, "video", None)
    if isinstance(videos, list):  # ``run A.mp4 key=value``: argparse gives both to VIDEO
        moved = [v for v in videos if "=" in v and not Path(v).exists()]
        args.video = [v for v in videos if v not in moved]
        args.overrides = [*moved, *args.overrides]
        if not args.video:
            parser.error("run: give at least one video")
    return args


def _fail(message: str, code: int, debug: bool) -> int:
    """Print the traceback (``debug``) and the one-line ``message``; returns ``code``."""
    if debug:
        traceback.print_exc()
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run ``slahmr-opt`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Returns:
        The command's code (0, or 1 from ``bench compare --check``); 2 after a user error;
        1 after an unexpected error. Usage errors exit through argparse (code 2).
    """
    args = _parse(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.handler(args)
    except (SlahmrOptError, OSError) as e:
        # The library speaks of its keyword arguments; here the user passed flags.
        message = str(e).replace("overwrite=True", "--overwrite")
        return _fail(f"error: {message}", 2, args.debug)
    except Exception as e:
        first = (str(e).splitlines() or [""])[0]
        hint = "" if args.debug else f" (rerun with {PROG} --debug for the traceback)"
        return _fail(f"unexpected error: {type(e).__name__}: {first}{hint}", 1, args.debug)
