"""``slahmr-opt render``: an mp4 of a fitted result, meshes over the frames beside a world view.

``add_parser`` adds the command to the main parser; ``handle`` runs it. The flags' defaults are
``RenderOptions``'. The renderer (pyrender, OSMesa) is imported only when the command runs, so
``slahmr-opt`` starts without it.
"""

import argparse

from slahmr_opt.cli.common import parse_frames
from slahmr_opt.files.outputs import check_output_file
from slahmr_opt.render.render import RenderOptions


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``render`` to the ``subparsers`` of the main parser; returns its parser."""
    p = subparsers.add_parser(
        "render",
        help="render a results.npz to an mp4 (meshes over the frames, and a world view)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--results", required=True, help="results.npz written by fit or demo")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video", help="the input video (result frame t = frame frame_offset + t)")
    src.add_argument("--images", help="folder of the input frames (sorted names, i-th = frame i)")
    p.add_argument("--out", required=True, help="output .mp4 (H.264)")
    p.add_argument(
        "--view",
        choices=("above", "side"),
        default=RenderOptions.view,
        help=f"world view (default: {RenderOptions.view})",
    )
    p.add_argument(
        "--width",
        type=int,
        default=RenderOptions.width,
        help=f"output width in pixels, both views ({RenderOptions.width})",
    )
    p.add_argument(
        "--frames", type=parse_frames, default=slice(None), metavar="START:STOP:STEP",
        help="result frames to render, Python slice syntax (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--body-model", help="body model file, if not the one in config.yaml beside --results"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    """Render ``args.results`` to ``args.out``; prints what was written and returns 0.

    Raises:
        SlahmrOptError: a bad input or output (the message names the file and the problem;
            nothing is left at ``args.out`` then; ``OutputError`` for ``args.out``, checked
            before the results are read).
    """
    from slahmr_opt.files.video import FrameReader
    from slahmr_opt.io.bodies import result_body_model
    from slahmr_opt.io.results import read_result
    from slahmr_opt.render.render import render_result

    out = check_output_file(args.out, args.overwrite, (".mp4",))
    result = read_result(args.results)
    body_model = result_body_model(result, body_path=args.body_model, source=args.results)
    options = RenderOptions(
        view=args.view, width=args.width, frames=args.frames, progress=not args.quiet
    )
    reader = None
    if args.video or args.images:
        reader = FrameReader(video=args.video, images=args.images)
    try:
        report = render_result(result, body_model, out, reader, options, source=args.results)
    finally:
        if reader is not None:
            reader.close()
    H, W = report.size
    print(
        f"wrote {report.path}: {report.num_frames} frames, {W}x{H}, "
        f"{report.fps:.1f} frames/s ({report.seconds:.1f} s)"
    )
    return 0
