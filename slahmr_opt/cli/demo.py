"""``slahmr-opt demo``: fit the bundled example and report its accuracy against its ground truth."""

import argparse
import json
from pathlib import Path

from slahmr_opt.cli.common import EXAMPLE_DIR, add_config_args, fit_files
from slahmr_opt.config import load_config


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``demo`` to the ``subparsers`` of the main parser; returns its parser."""
    p = subparsers.add_parser("demo", help="fit the bundled example and report its accuracy")
    add_config_args(p)
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    """Fit the bundled example into ``args.out``, score it and print the report; returns 0."""
    from slahmr_opt.experiments.evaluate import METRIC_UNITS, evaluate_result
    from slahmr_opt.files.outputs import claimed_output

    cfg = load_config(args.config, args.overrides)
    with claimed_output(Path(args.out), args.overwrite) as out:
        result, path = fit_files(EXAMPLE_DIR / "tracks.npz", EXAMPLE_DIR / "cameras.npz", False,
                                 cfg, out, args.quiet, points=EXAMPLE_DIR / "points.npz",
                                 overwrite=args.overwrite)  # fmt: skip
        metrics = evaluate_result(path, EXAMPLE_DIR / "gt.npz")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    seconds = sum(s.seconds for s in result.stages)
    frames = int(result.track_mask.shape[1])
    print(
        f"bundled example: {frames} frames, fitted in {seconds:.1f} s "
        f"({frames / max(seconds, 1e-9):.1f} frames/s)"
    )
    for stage in result.stages:
        print(
            f"  stage {stage.name:>8s} ({stage.solver}): {stage.iterations:3d} it, "
            f"{stage.seconds:6.1f} s, loss {stage.initial_loss:.4g} -> {stage.final_loss:.4g}"
        )
    for key, unit in METRIC_UNITS.items():
        print(f"  {key:12s} {metrics[key]:8.1f} {unit}")
    print(f"  camera scale alpha {result.cameras.alpha:.4f} (true {metrics['alpha_true']:.4f})")
    print(f"results written to {path}")
    return 0
