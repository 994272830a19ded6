"""``slahmr-opt eval``: score a ``results.npz`` against a ``gt.npz``.

``add_eval_parser`` adds the subcommand to the main parser; ``run_eval`` runs it.
"""

import argparse
import json
import math
import sys
from pathlib import Path

from slahmr_opt.errors import SlahmrOptError
from slahmr_opt.eval.evaluate import METRIC_UNITS, evaluate_result


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``eval`` to the ``subparsers`` of the main parser; returns its parser."""
    p = subparsers.add_parser(
        "eval",
        help="score a results.npz against ground truth (W/WA-MPJPE100, RTE, jitter, FS, ...)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--pred", required=True, help="results.npz written by fit or demo")
    p.add_argument("--gt", required=True, help="ground truth .npz (see slahmr_opt.eval.evaluate)")
    p.add_argument("--json", help="also write the metrics to this JSON file")
    return p


def format_metrics(metrics: dict[str, float]) -> str:
    """The metrics as lines ``name  value unit``."""
    lines = [f"  {k:12s} {metrics[k]:9.2f} {unit}" for k, unit in METRIC_UNITS.items()]
    lines.append(f"  {'frames':12s} {metrics['frames']:9d}")
    if not math.isnan(metrics.get("alpha_true", math.nan)):
        lines.append(
            f"  camera scale alpha {metrics['alpha']:.4f} (true {metrics['alpha_true']:.4f})"
        )
    return "\n".join(lines)


def run_eval(args: argparse.Namespace) -> int:
    """Print the metrics of ``args.pred`` against ``args.gt`` (and write ``args.json``).

    Returns:
        0, or 2 after a one-line error naming the file and the problem.
    """
    try:
        metrics = evaluate_result(args.pred, args.gt)
    except SlahmrOptError as e:
        print(f"slahmr-opt: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.pred} against {args.gt}:")
    print(format_metrics(metrics))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics, indent=2))
    return 0
