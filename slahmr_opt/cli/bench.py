"""``slahmr-opt bench make`` / ``slahmr-opt bench run``: build and run synthetic benchmarks.

    slahmr-opt bench make --mocap ../shared/data/mocap/bandai-namco-2.tar.xz --out bench \\
        --camera all --max-frames 200 --max-sequences 4 --contains _walk_ _run_
    slahmr-opt bench run --bench bench --out bench-out --config slahmr_lbfgs

Rendered videos with ground truth, run through ``slahmr-opt run`` end to end::

    slahmr-opt bench make --video --mocap ../shared/data/mocap/bandai-namco-2.tar.xz \\
        --out vbench --camera tracking static --max-frames 120 --max-sequences 2 \\
        --contains _walk_ _run_ --per-pattern 1 --size 480x270 --focal-off 0.15
    slahmr-opt bench run --video --bench vbench --out vbench-out
"""

import argparse
import json
import logging
from pathlib import Path

from slahmr_opt.cli.common import add_batch_args, batch_settings
from slahmr_opt.errors import ConfigError

logger = logging.getLogger(__name__)

CAMERA_CHOICES = ("static", "pan", "tracking", "orbit", "handheld", "behind", "side", "all")
VIDEO_ONLY_CAMERAS = ("behind", "side")
"""Tracking cameras filming from behind / the right side: rendered-video benchmarks only."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` command (``make``, ``run``, ``table``, ``compare``) to the
    ``subparsers`` of the main parser; returns its parser."""
    bench = subparsers.add_parser("bench", help="build or run a synthetic benchmark")
    bench.set_defaults(handler=handle)
    sub = bench.add_subparsers(dest="bench_command", required=True)
    make = sub.add_parser("make", help="build a benchmark from motion capture")
    make.add_argument(
        "--mocap",
        nargs="+",
        required=True,
        help="BVH files, folders of them or .tar.xz archives: Bandai-Namco (evaluation split "
        "only), CMU (120 fps, resampled to 30) or other rigs mapped by joint names",
    )
    make.add_argument("--out", required=True, help="benchmark folder to write")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument(
        "--camera",
        nargs="+",
        choices=CAMERA_CHOICES,
        default=["all"],
        help="camera kinds (handheld: orbit with hand-held shake; behind, side: tracking from "
        "behind or the right side, --video only); default all (static, pan, tracking, orbit)",
    )
    make.add_argument("--people", type=int, default=1, help="people per scene, side by side")
    make.add_argument("--max-frames", type=int, default=300)
    make.add_argument(
        "--max-sequences",
        type=int,
        default=None,
        help="most motions (or groups of --people motions) to use",
    )
    make.add_argument(
        "--contains",
        nargs="*",
        default=[],
        help="keep files whose name contains one of these strings",
    )
    make.add_argument(
        "--per-pattern",
        type=int,
        default=None,
        help="at most this many motions per --contains string (stratified by action)",
    )
    make.add_argument(
        "--guesses",
        choices=("realistic", "near-true", "none"),
        default="realistic",
        help="per-frame SMPL guesses: as poor as a real tracker's (default), near the truth, "
        "or none (keypoints only)",
    )
    make.add_argument("--no-face", action="store_true", help="no face keypoints (nose, eyes, ears)")
    make.add_argument(
        "--variants",
        nargs="+",
        choices=("original", "reversed", "mirrored"),
        default=["original"],
        help="film each motion as recorded, played backwards and/or mirrored left-right "
        "(motions the priors' training data lacks); default original",
    )
    make.add_argument(
        "--one-camera",
        action="store_true",
        help="film each motion and variant with one camera kind, cycling through --camera "
        "(motion g, variant k: kind (g + 2k) mod the number of kinds), not with every kind",
    )
    make.add_argument(
        "--video",
        action="store_true",
        help="render videos of the bodies in a textured courtyard (video.mp4 + gt.npz per "
        "sequence, for bench run --video) instead of keypoint tracks; one person per video",
    )
    make.add_argument("--size", default="480x270", metavar="WxH",
                      help="--video: frame size in pixels, both even (480x270)")  # fmt: skip
    make.add_argument(
        "--focal-off",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="--video: about half the videos (alternating) have a focal length (1 + FRACTION) "
        "times the default (H + W) / 2 (0: all default)",
    )
    make.add_argument(
        "--allow-train",
        action="store_true",
        help="accept Bandai-Namco training-split files (not for reported numbers)",
    )
    make.add_argument("--overwrite", action="store_true",
                      help="replace the benchmark in --out (an existing index.json)")  # fmt: skip
    run = sub.add_parser("run", help="fit and score every sequence of a benchmark")
    run.add_argument("--bench", required=True, help="benchmark folder (with index.json)")
    run.add_argument("--out", required=True, help="output folder (resumes if it has results)")
    run.add_argument("--config", default=None, help="YAML config or shipped config name")
    run.add_argument(
        "--video",
        action="store_true",
        help="a bench make --video benchmark: slahmr-opt run on each video",
    )
    add_batch_args(run)
    run.add_argument("overrides", nargs="*", help="key=value config overrides")
    tab = sub.add_parser("table", help="markdown tables of bench run results, by camera, motion "
                         "kind and variant")  # fmt: skip
    tab.add_argument("metrics", nargs="+", help="metrics.json files of bench run")
    cmp = sub.add_parser("compare", help="runs side by side per camera, motion kind and variant")
    cmp.add_argument("runs", nargs="+", metavar="LABEL=METRICS",
                     help="labelled metrics.json files; the first is the reference")  # fmt: skip
    cmp.add_argument("--check", type=float, default=None, metavar="FRACTION",
                     help="list every group where a run is worse than the reference by more "
                     "than this fraction in PA-MPJPE, WA-MPJPE100, W-MPJPE100 or RTE; "
                     "exit 1 if any")  # fmt: skip
    return bench  # fmt: skip


def _cameras(choice: list[str]) -> list[str]:
    from slahmr_opt.synth.benchmark import CAMERA_KINDS

    extra = [c for c in choice if c in VIDEO_ONLY_CAMERAS]
    return (
        list(dict.fromkeys([*CAMERA_KINDS, *extra]))
        if "all" in choice
        else list(dict.fromkeys(choice))
    )


def format_table(report: dict) -> str:
    """Plain-text table of the means, overall and per camera kind."""
    from slahmr_opt.experiments.bench_run import METRIC_KEYS

    rows = {**{f"  {k}": v for k, v in report["by_camera"].items()}, "all": report["mean"]}
    keys = [k for k in METRIC_KEYS if k in report["mean"]]
    head = f"{'':12s}" + "".join(f"{k:>13s}" for k in (*keys, "frames", "seconds"))
    lines = [head]
    for name, m in rows.items():
        vals = "".join(f"{m.get(k, float('nan')):13.1f}" for k in keys)
        lines.append(f"{name:12s}{vals}{m['frames']:13d}{m['seconds']:13.1f}")
    return "\n".join(lines)


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(H, W)``, both even and at least 64 pixels."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        width = height = -1
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise ConfigError(f"--size must be WxH with even sizes of at least 64, got {text!r}")
    return height, width


def _selection(args: argparse.Namespace) -> dict:
    """The arguments ``bench make`` and ``bench make --video`` share: the mocap, the output and
    which motions and cameras to take."""
    return {
        "mocap_paths": args.mocap,
        "out_dir": args.out,
        "seed": args.seed,
        "cameras": _cameras(args.camera),
        "max_frames": args.max_frames,
        "max_sequences": args.max_sequences,
        "allow_train": args.allow_train,
        "contains": args.contains,
        "per_pattern": args.per_pattern,
        "one_camera": args.one_camera,
        "overwrite": args.overwrite,
    }


def _make_video(args: argparse.Namespace) -> int:
    from slahmr_opt.synth.video_benchmark import make_video_benchmark

    unused = [flag for flag, value, default in (
        ("--people", args.people, 1), ("--guesses", args.guesses, "realistic"),
        ("--no-face", args.no_face, False), ("--variants", args.variants, ["original"]),
    ) if value != default]  # fmt: skip
    if unused:
        raise ConfigError(f"{', '.join(unused)} do(es) not apply to --video benchmarks")
    path = make_video_benchmark(
        **_selection(args), image_size=parse_size(args.size), focal_off=args.focal_off
    )
    index = json.loads(Path(path).read_text())
    print(f"wrote {len(index['sequences'])} videos; index: {path}")
    return 0


def handle(args: argparse.Namespace) -> int:
    """Run ``bench make``, ``run``, ``table`` or ``compare``; returns the exit status (1: ``compare
    --check`` found a regression)."""
    if args.bench_command == "make" and args.video:
        return _make_video(args)
    if args.bench_command == "make":
        from slahmr_opt.synth.benchmark import make_benchmark

        if set(args.camera) & set(VIDEO_ONLY_CAMERAS):
            raise ConfigError(f"--camera {' '.join(VIDEO_ONLY_CAMERAS)} need --video")

        path = make_benchmark(
            **_selection(args),
            people=args.people,
            guesses=args.guesses,
            no_face=args.no_face,
            variants=args.variants,
        )
        index = json.loads(Path(path).read_text())
        print(f"wrote {len(index['sequences'])} sequences; index: {path}")
        return 0
    if args.bench_command in ("table", "compare"):
        from slahmr_opt.experiments.bench_table import compare, table

        paths = [item.split("=", 1)[-1] for item in getattr(args, "runs", None) or args.metrics]
        if args.bench_command == "table":
            for path in paths:
                print(f"\n{path}\n{table(path)}")
            return 0
        labels = [item.split("=", 1)[0] if "=" in item else item for item in args.runs]
        text, regressions = compare(dict(zip(labels, paths, strict=True)), args.check)
        print(text)
        if args.check is not None:
            head = f"{len(regressions)} group(s) worse than {labels[0]} by more than"
            print(f"\n{head} {100 * args.check:.0f} %" + "".join(f"\n  {r}" for r in regressions))
            return 1 if regressions else 0
        return 0
    if args.bench_command == "run" and args.video:
        if batch_settings(args) is not None:
            raise ConfigError("--workers and --ray apply to keypoint benchmarks; a video "
                              "benchmark runs its videos in turn")  # fmt: skip
        from slahmr_opt.experiments.video_bench_run import format_video_table, run_video_benchmark

        report = run_video_benchmark(args.bench, args.out, args.config, args.overrides)
        print(format_video_table(report))
        print(f"metrics written to {Path(args.out) / 'metrics.json'}")
        return 0
    if args.bench_command == "run":
        from slahmr_opt.experiments.bench_run import run_benchmark

        report = run_benchmark(args.bench, args.out, args.config, args.overrides,
                               batch_settings(args))  # fmt: skip
        print(format_table(report))
        for name, error in report.get("failed", {}).items():
            print(f"failed: {name}: {error}")
        print(f"metrics written to {Path(args.out) / 'metrics.json'}")
        return 1 if report.get("failed") else 0
    raise ValueError(f"unknown bench command {args.bench_command!r}")
