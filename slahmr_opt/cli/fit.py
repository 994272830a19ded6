"""``slahmr-opt fit``: bodies and camera scale fitted to tracks and cameras you already have."""

import argparse
from pathlib import Path

from slahmr_opt.cli.common import add_config_args, fit_files
from slahmr_opt.config import load_config


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``fit`` to the ``subparsers`` of the main parser; returns its parser."""
    p = subparsers.add_parser("fit", help="fit bodies and camera scale to tracks and cameras")
    p.add_argument(
        "--tracks",
        required=True,
        help="PHALP output pickle (.pkl), SLAHMR's exported track folder, or tracks .npz",
    )
    cam = p.add_mutually_exclusive_group(required=True)
    cam.add_argument("--cameras", help="DROID-SLAM trajectory (.npy/.txt), cameras.npz or TUM file")
    cam.add_argument("--static", action="store_true", help="the camera does not move")
    p.add_argument(
        "--points",
        help="background scene points in the cameras' SLAM world, for the camera scale: "
        "points.npz (the video front end's), a DROID-SLAM reconstruction folder, .ply or .npy",
    )
    p.add_argument(
        "--init",
        metavar="KIND:PATH",
        help="start from other bodies than the tracker's guesses: regressor (the built-in "
        "keypoint regressor), wham:wham_output.pkl, trace:<seq>.npz, gvhmr:hmr4d_results.pt, "
        "tram:results/<seq>, slahmr:<stage>/<seq>_<iter>_world_results.npz",
    )
    add_config_args(p)
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    """Fit the files ``args`` name into ``args.out``; returns 0 (errors are raised)."""
    from slahmr_opt.files.outputs import claimed_output

    cfg = load_config(args.config, args.overrides)
    with claimed_output(Path(args.out), args.overwrite) as out:
        _, path = fit_files(
            Path(args.tracks),
            Path(args.cameras) if args.cameras else None,
            args.static,
            cfg,
            out,
            args.quiet,
            init=args.init,
            points=Path(args.points) if args.points else None,
            overwrite=args.overwrite,
        )
    print(f"results written to {path}")
    return 0
