"""``slahmr-opt ablate``: run an ablation grid (``slahmr_opt.experiments.ablate``) on a benchmark folder.

Wire it into the main parser with ``add_ablate_parser(subparsers)``; the parser's ``func`` default
is ``run_ablate``.
"""

import argparse
import logging
import sys
from pathlib import Path

from slahmr_opt.errors import SlahmrOptError

logger = logging.getLogger(__name__)


def add_ablate_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``ablate`` sub-command to ``subparsers`` (from ``add_subparsers``) and return it."""
    p = subparsers.add_parser(
        "ablate",
        help="fit a benchmark under every variant of an ablation grid and tabulate the metrics",
        description=(
            "Cells (variant x sequence) already done in --out with the same resolved config are "
            "skipped, so an interrupted grid resumes. Writes table.md, table.csv and cells.csv."
        ),
    )
    p.add_argument(
        "--grid", required=True, help="grid YAML, or a name in configs/ablations/ (e.g. priors)"
    )
    p.add_argument("--bench", required=True, help="benchmark folder with index.json")
    p.add_argument("--out", help="output folder (default: ablations/<grid name>)")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run cells as Ray tasks: 'local' starts a local instance, 'auto' or "
        "'ray://HOST:PORT' joins a cluster (default: a local process pool)",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="parallel cells (pool size or local Ray CPUs)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    p.set_defaults(func=run_ablate)
    return p


def run_ablate(args: argparse.Namespace) -> int:
    """Run the grid described by parsed ``ablate`` arguments; 0 on success, 2 on a user error."""
    from slahmr_opt.experiments.ablate import find_grid, run_ablation

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING if args.quiet else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )
    try:
        if args.workers < 1:
            raise SlahmrOptError(f"--workers must be >= 1, got {args.workers}")
        grid = find_grid(args.grid)
        out = Path(args.out) if args.out else Path("ablations") / grid.stem
        table = run_ablation(
            grid,
            args.bench,
            out,
            executor="ray" if args.ray else "local",
            ray_address=args.ray,
            workers=args.workers,
            progress=not args.quiet,
        )
    except SlahmrOptError as e:
        print(f"slahmr-opt: error: {e}", file=sys.stderr)
        return 2
    print(table.read_text(), end="")
    print(f"tables written to {table.parent}")
    return 0
