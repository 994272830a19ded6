"""``slahmr-opt``: run, fit, demo, eval, bench, ablate, export and render.

Errors a user can fix (bad files, bad config) end with a one-line message naming the file and
the problem, and exit code 2; nothing is written as if complete.
"""

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from slahmr_opt.config import Config, load_config
from slahmr_opt.errors import SlahmrOptError
from slahmr_opt.eval.ablate_cli import add_ablate_parser, run_ablate
from slahmr_opt.eval.bench_cli import add_bench_parser, run_bench
from slahmr_opt.eval.eval_cli import add_eval_parser, run_eval
from slahmr_opt.io.export_cli import add_export_parser, run_export
from slahmr_opt.render.render_cli import add_render_parser, run_render
from slahmr_opt.run import add_run_parser, run_cli

#: Commands with their own runner (they take no --config / --out of the fit commands).
RUNNERS = {
    "eval": run_eval,
    "bench": run_bench,
    "ablate": run_ablate,
    "export": run_export,
    "render": run_render,
    "run": run_cli,
}

logger = logging.getLogger("slahmr_opt")

EXAMPLE_DIR = Path(__file__).resolve().parent / "data" / "example"


def _add_fit_args(p: argparse.ArgumentParser) -> None:
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
    _add_common(p)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="YAML of overrides (or a name in configs/, e.g. stages_1_2)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    p.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. stages.smooth.solver.kind=lbfgs"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slahmr-opt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub)
    _add_fit_args(sub.add_parser("fit", help="fit bodies and camera scale to tracks and cameras"))
    _add_common(sub.add_parser("demo", help="fit the bundled example and report its accuracy"))
    add_eval_parser(sub)
    add_bench_parser(sub)
    add_ablate_parser(sub)
    add_export_parser(sub)
    add_render_parser(sub)
    return parser


def _fit(
    tracks: Path,
    cameras: Path | None,
    static: bool,
    cfg: Config,
    out: Path,
    quiet: bool,
    init: str | None = None,
    points: Path | None = None,
):
    from slahmr_opt.inputs.observations import load_observations_with
    from slahmr_opt.io.results import write_result
    from slahmr_opt.solve import solve

    obs = load_observations_with(cfg.data, tracks, cameras, static=static, points_path=points)
    if init == "regressor":
        cfg = replace(cfg, init=replace(cfg.init, guesses="regressor"))
        obs = replace(obs, sources={**obs.sources, "init": "regressor"})
    elif init:
        from slahmr_opt.init.external import apply_initializer

        obs = apply_initializer(obs, init, cfg.body)
    logger.info(
        "%d people, %d frames at %.3g fps, %s camera",
        obs.num_people,
        obs.num_frames,
        obs.fps,
        "static" if obs.cameras.is_static else "moving",
    )
    result = solve(obs, cfg, checkpoint_dir=out / "checkpoints", progress=not quiet)
    path = write_result(result, out)
    (out / "inputs.json").write_text(json.dumps(obs.sources, indent=2))
    return result, path


def _demo(args, cfg: Config) -> None:
    from slahmr_opt.experiments.evaluate import METRIC_UNITS, evaluate_result

    out = Path(args.out)
    result, path = _fit(EXAMPLE_DIR / "tracks.npz", EXAMPLE_DIR / "cameras.npz", False, cfg, out,
                        args.quiet, points=EXAMPLE_DIR / "points.npz")  # fmt: skip
    metrics = evaluate_result(path, EXAMPLE_DIR / "gt.npz")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    seconds = sum(s["seconds"] for s in result.stages)
    frames = int(result.track_mask.shape[1])
    print(
        f"bundled example: {frames} frames, fitted in {seconds:.1f} s "
        f"({frames / max(seconds, 1e-9):.1f} frames/s)"
    )
    for stage in result.stages:
        print(
            f"  stage {stage['name']:>8s} ({stage['solver']}): {stage['iterations']:3d} it, "
            f"{stage['seconds']:6.1f} s, loss {stage['initial_loss']:.4g} -> "
            f"{stage['final_loss']:.4g}"
        )
    for key, unit in METRIC_UNITS.items():
        print(f"  {key:12s} {metrics[key]:8.1f} {unit}")
    print(f"  camera scale alpha {result.cameras.alpha:.4f} (true {metrics['alpha_true']:.4f})")
    print(f"results written to {path}")


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
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    from slahmr_opt.io.results import check_results_out

    try:
        if args.command in RUNNERS:
            return RUNNERS[args.command](args)
        cfg = load_config(args.config, args.overrides)
        out = Path(args.out)
        check_results_out(out, args.overwrite)
        if args.command == "fit":
            _, path = _fit(
                Path(args.tracks),
                Path(args.cameras) if args.cameras else None,
                args.static,
                cfg,
                out,
                args.quiet,
                init=args.init,
                points=Path(args.points) if args.points else None,
            )
            print(f"results written to {path}")
        else:
            _demo(args, cfg)
    except SlahmrOptError as e:
        print(f"slahmr-opt: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
