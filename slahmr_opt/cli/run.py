"""``slahmr-opt run VIDEO --out DIR``: raw video in; tracks, camera, fit, render and GLB out.

With several videos (``run A.mp4 B.mp4 ... --out DIR``) each gets ``DIR/<video name>/`` and the
videos run as batch jobs (``experiments.batch``: in turn, on ``--workers`` local processes, or on
Ray with ``--ray``), the results sent back to this process; ``DIR/batch.csv`` and the printed
table summarise them, and a rerun skips the videos already done with the same config (with
``--overwrite`` it runs them all again).

The flow and its outputs are ``slahmr_opt.run``'s; this module parses the command line and
prints the report. The front-end flags are overrides of the config (``--static``:
``frontend.static``, ``--max-people``: ``frontend.max_people``, ``--intrinsics``:
``data.intrinsics``), applied after the dotted overrides; the resolved config is saved with the
results.
"""

import argparse
from pathlib import Path

from slahmr_opt.cli.common import add_batch_args, batch_settings
from slahmr_opt.config import FrontEndConfig
from slahmr_opt.errors import ConfigError


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``run`` to the ``subparsers`` of the main parser; returns its parser."""
    p = subparsers.add_parser(
        "run",
        help="raw video in: tracks, camera, fit (all stages), render.mp4, scene.glb",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("video", nargs="+", help="the input video(s) (mp4, mov, ...)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--static", action="store_true", help="the camera does not move (frontend.static=true)"
    )
    p.add_argument(
        "--intrinsics",
        metavar="FX,FY,CX,CY",
        help="camera intrinsics in pixels (data.intrinsics; default: [(H+W)/2, (H+W)/2, W/2, H/2])",
    )
    p.add_argument(
        "--max-people",
        type=int,
        help=f"most people tracked (frontend.max_people; default {FrontEndConfig.max_people})",
    )
    p.add_argument("--no-render", action="store_true", help="skip render.mp4")
    p.add_argument("--config", help="YAML of overrides (or a name in configs/)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="the keypoint regressor's result, no optimization (--config regressor_only)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    add_batch_args(p)
    p.add_argument("overrides", nargs="*", help="dotted config overrides")
    p.set_defaults(handler=handle)
    return p


def parse_intrinsics(text: str | None) -> tuple[float, float, float, float] | None:
    """``"fx,fy,cx,cy"`` -> four floats with positive focals; None stays None.

    Raises:
        ConfigError: not four numbers, or a focal length that is not positive.
    """
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[0] <= 0 or values[1] <= 0:
        raise ConfigError(f"--intrinsics must be fx,fy,cx,cy with positive focals, got {text!r}")
    return values


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """The front-end flags given in ``args`` as dotted config overrides."""
    overrides = []
    if args.static:
        overrides.append("frontend.static=true")
    if args.max_people is not None:
        overrides.append(f"frontend.max_people={args.max_people}")
    intrinsics = parse_intrinsics(args.intrinsics)
    if intrinsics is not None:
        overrides.append(f"data.intrinsics=[{', '.join(repr(v) for v in intrinsics)}]")
    return overrides


def handle(args: argparse.Namespace) -> int:
    """Run the video ``args`` name through front end, fit, export and render; returns 0."""
    from slahmr_opt.config import load_config
    from slahmr_opt.files.outputs import claimed_output
    from slahmr_opt.frontend.blazepose import import_mediapipe
    from slahmr_opt.run import FrontEndSettings, run_video

    if args.fast and args.config:
        raise ConfigError("--fast is --config regressor_only; give one of them")
    overrides = [*args.overrides, *flag_overrides(args)]
    cfg = load_config("regressor_only" if args.fast else args.config, overrides)
    settings = FrontEndSettings.from_config(cfg)
    import_mediapipe()  # the [video] extra, checked before any output is claimed
    batch = batch_settings(args)
    if len(args.video) == 1 and batch is None:
        with claimed_output(Path(args.out), args.overwrite) as out:
            report = run_video(args.video[0], out, cfg, settings, progress=not args.quiet,
                               render=not args.no_render)  # fmt: skip
        _print_report(report)
        return 0
    return _run_batch(args, cfg, settings, batch)


def _run_batch(args: argparse.Namespace, cfg, settings, batch) -> int:
    """Several videos as batch jobs (module docstring); 0 when all are done, else 1."""
    from slahmr_opt.experiments.batch import BatchSettings, run_jobs, summary_rows, write_summary
    from slahmr_opt.experiments.video_batch import video_jobs
    from slahmr_opt.files.outputs import claimed_output

    jobs = video_jobs([Path(v) for v in args.video], cfg, settings, not args.no_render)
    with claimed_output(Path(args.out), True, "batch.csv") as out:
        outcomes = run_jobs(jobs, out, batch or BatchSettings(), progress=not args.quiet,
                            rerun=args.overwrite)  # fmt: skip
        rows = summary_rows(outcomes, ["people", "frames", "camera", "world_scale"])
        print(write_summary(out, rows))
    print(f"{sum(o.status != 'failed' for o in outcomes)} of {len(outcomes)} videos done; "
          f"results in {out}/<video>/, summary in {out / 'batch.csv'}")
    return 0 if all(o.status != "failed" for o in outcomes) else 1


def _print_report(report) -> None:
    """What ``run_video`` did (a ``slahmr_opt.run.RunReport``), on stdout."""
    cam = "static" if report.is_static else "moving"
    print(f"{report.num_people} people, {report.num_frames} frames, {cam} camera")
    if report.reused_front_end:
        print("  front end: reused from frontend/")
    for step, seconds in report.seconds.items():
        print(f"  {step:10s} {seconds:7.1f} s")
    for s in report.stages:
        print(f"  stage {s['name']:>8s}: {s['iterations']:3d} it, loss {s['initial_loss']:.4g} "
              f"-> {s['final_loss']:.4g} ({s['seconds']:.1f} s)")  # fmt: skip
    print(f"results in {report.out}")
