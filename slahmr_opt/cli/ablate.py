"""``slahmr-opt ablate``: run an ablation grid (``slahmr_opt.experiments.ablate``) on a benchmark
folder.

``add_parser`` adds the command to the main parser; ``handle`` runs it.
"""

import argparse
from pathlib import Path

from slahmr_opt.errors import ConfigError


def add_parser(subparsers) -> argparse.ArgumentParser:
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
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    """Run the grid described by parsed ``ablate`` arguments and print its table; returns 0."""
    from slahmr_opt.experiments.ablate import find_grid, run_ablation

    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
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
    print(table.read_text(), end="")
    print(f"tables written to {table.parent}")
    return 0
