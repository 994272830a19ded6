"""``slahmr-opt eval``: score a ``results.npz`` (or SLAHMR's ``world_results.npz``) against a
``gt.npz``.

``add_parser`` adds the command to the main parser; ``handle`` runs it.
"""

import argparse
import json
import math
from pathlib import Path

from slahmr_opt.body import BodyConfig
from slahmr_opt.errors import OutputError
from slahmr_opt.experiments.evaluate import METRIC_UNITS, evaluate_result
from slahmr_opt.files.checks import reason, write_atomic
from slahmr_opt.files.outputs import check_output_file


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``eval`` to the ``subparsers`` of the main parser; returns its parser."""
    p = subparsers.add_parser(
        "eval",
        help="score a results.npz against ground truth (W/WA-MPJPE100, RTE, jitter, FS, ...)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "--pred",
        required=True,
        help="results.npz written by fit or demo, or SLAHMR's "
        "<stage>/<seq>_<iter>_world_results.npz",
    )
    p.add_argument(
        "--gt", required=True, help="ground truth .npz (see slahmr_opt.experiments.evaluate)"
    )
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    slahmr = p.add_argument_group("SLAHMR predictions (ignored for our results.npz)")
    slahmr.add_argument(
        "--slahmr-body",
        help="SLAHMR's SMPL-H model (smplh/neutral/model.npz or a folder) to pose its bodies "
        "exactly; default: the built-in body on SLAHMR's pelvis trajectory",
    )
    slahmr.add_argument(
        "--fps", type=float, help="frame rate (default: the run's .hydra/config.yaml)"
    )
    slahmr.add_argument(
        "--frame-offset",
        type=int,
        help="video frame of SLAHMR's frame 0 (default: from track_info.json, else 0)",
    )
    p.set_defaults(handler=handle)
    return p


def format_metrics(metrics: dict[str, float]) -> str:
    """The metrics as lines ``name  value unit``."""
    lines = [f"  {k:12s} {metrics[k]:9.2f} {unit}" for k, unit in METRIC_UNITS.items()]
    lines.append(f"  {'frames':12s} {metrics['frames']:9d}")
    if not math.isnan(metrics.get("alpha_true", math.nan)):
        alpha = metrics["alpha"]
        said = "not observed (static or pan)" if math.isnan(alpha) else f"{alpha:.4f}"
        lines.append(f"  camera scale alpha {said} (true {metrics['alpha_true']:.4f})")
    return "\n".join(lines)


def _slahmr_body(path: str | None) -> BodyConfig | None:
    """SLAHMR's body model: SMPL-H neutral with 16 betas (``confs/config.yaml`` ``paths.smpl``)."""
    if path is None:
        return None
    return BodyConfig(model_path=path, model_type="smplh", gender="neutral", num_betas=16)


def handle(args: argparse.Namespace) -> int:
    """Print the metrics of ``args.pred`` against ``args.gt`` (and write ``args.json``).

    Returns:
        0.

    Raises:
        InputError: a file is missing or malformed (the message names it).
        OutputError: ``args.json`` cannot be written or exists without ``args.overwrite``
            (checked before scoring, and again when writing).
    """
    if args.json:
        check_output_file(args.json, args.overwrite)
    metrics = evaluate_result(
        args.pred,
        args.gt,
        slahmr_body=_slahmr_body(args.slahmr_body),
        fps=args.fps,
        frame_offset=args.frame_offset,
    )
    print(f"{args.pred} against {args.gt}:")
    print(format_metrics(metrics))
    if args.json:
        write_json(Path(args.json), metrics, args.overwrite)
    return 0


def write_json(path: Path, metrics: dict, overwrite: bool) -> None:
    """Write ``metrics`` to ``path`` atomically (a complete file or none), refusing to replace
    an existing file without ``overwrite`` (checked again here: another run may have written it
    meanwhile).

    Raises:
        OutputError: ``path`` exists without ``overwrite`` or cannot be written.
    """
    text = json.dumps(metrics, indent=2).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not overwrite:
            raise OutputError(path, "exists; pass --overwrite to replace it")
        write_atomic(path, lambda f: f.write(text))
    except OSError as exc:
        raise OutputError(path, f"cannot be written ({reason(exc)})") from None
