"""``slahmr-opt export``: a ``results.npz`` as GLB, BVH, AMASS npz, TUM, OBJ or PLY files.

    slahmr-opt export --results out/results.npz --format glb --out out/scene.glb
    slahmr-opt export --results out/results.npz --format bvh --out out/bvh/
    slahmr-opt export --results out/results.npz --format amass --out out/amass/
    slahmr-opt export --results out/results.npz --format tum --out out/camera.tum
    slahmr-opt export --results out/results.npz --format obj --out out/meshes --frames 0:150:10

``add_parser`` adds the command to the main parser; ``handle`` runs it.
"""

import argparse
from pathlib import Path

from slahmr_opt.cli.common import parse_frames
from slahmr_opt.errors import ConfigError
from slahmr_opt.files.outputs import check_output_file, check_output_folder

FORMATS = ("glb", "bvh", "amass", "tum", "obj", "ply")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``export`` to the ``subparsers`` of the main parser; returns its parser."""
    p = subparsers.add_parser(
        "export",
        help="write a results.npz as GLB (animated scene), BVH, AMASS npz, TUM, OBJ or PLY files",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--results", required=True, help="results.npz written by fit or demo")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument(
        "--out",
        required=True,
        help="glb, tum: the file; bvh: a folder (person_<id>.bvh) or NAME.bvh "
        "(NAME_person_<id>.bvh); amass: a folder (person_<id>.npz); obj, ply: a folder "
        "(person_<id>/frame_<video frame>.obj)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--body-model",
        help="body model file to use instead of the one in the config.yaml beside --results",
    )
    p.add_argument(
        "--frames",
        type=parse_frames,
        default=slice(None),
        help="obj, ply: result frames START:STOP[:STEP] (default: all)",
    )
    p.add_argument(
        "--bvh-units",
        choices=("m", "cm"),
        default="m",
        help="bvh: metres (Blender's importer at scale 1) or centimetres; default m",
    )
    p.add_argument(
        "--influences",
        type=int,
        choices=(4, 8),
        default=4,
        help="glb: skinning weights per vertex (8 is exact for more meshes; some viewers read 4)",
    )
    p.add_argument(
        "--frustums", type=int, default=12, help="glb: camera frustums along the path (0: none)"
    )
    p.add_argument("--quiet", action="store_true", help="warnings only")
    p.set_defaults(handler=handle)
    return p


def check_out(out: Path, fmt: str, overwrite: bool) -> Path:
    """Check ``--out`` for ``fmt`` before any work (``files.outputs``); creates nothing.

    Raises:
        OutputError: ``out`` cannot be written, is the wrong kind (file / folder) or exists
            without ``overwrite``.
    """
    if fmt in ("glb", "tum"):
        return check_output_file(out, overwrite)
    if fmt == "bvh" and out.suffix.lower() == ".bvh":  # a stem: NAME_person_<id>.bvh beside it
        return check_output_file(out, True)
    # bvh, amass: each person's file is checked when written; obj, ply: the folder must be empty.
    return check_output_folder(out, overwrite or fmt in ("bvh", "amass"))


def export(args: argparse.Namespace) -> list[Path]:
    """Run the export ``args`` describe; returns the files written."""
    from slahmr_opt.io.bodies import result_body_model
    from slahmr_opt.io.export.amass import export_amass
    from slahmr_opt.io.export.bvh import export_bvh
    from slahmr_opt.io.export.camera_path import export_tum
    from slahmr_opt.io.export.glb import export_glb
    from slahmr_opt.io.export.meshes import export_meshes
    from slahmr_opt.io.results import read_result

    if args.format not in ("obj", "ply") and args.frames != slice(None):
        raise ConfigError(f"--frames applies to obj and ply, not {args.format}")
    out = check_out(Path(args.out), args.format, args.overwrite)
    result = read_result(args.results)
    model = result_body_model(result, body_path=args.body_model, source=args.results)
    if args.format == "tum":
        return [export_tum(result, out, args.overwrite)]
    if args.format == "glb":
        return [export_glb(result, model, out, args.overwrite, args.influences, args.frustums)]
    if args.format == "bvh":
        return export_bvh(result, model, out, args.overwrite, args.bvh_units)
    if args.format == "amass":
        return export_amass(result, model, out, args.overwrite)
    return export_meshes(result, model, out, args.format, args.frames, args.overwrite)


def handle(args: argparse.Namespace) -> int:
    """Export ``args.results``; prints what was written and returns 0.

    Raises:
        InputError: ``args.results`` is missing or malformed.
        OutputError: ``args.out`` cannot be written or exists without ``args.overwrite``
            (checked before the results are read).
        FileExistsError: an output exists and ``args.overwrite`` is not set.
    """
    paths = export(args)
    size = sum(p.stat().st_size for p in paths)
    shown = ", ".join(str(p) for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
    print(f"wrote {len(paths)} {args.format} file(s), {size / 1e6:.2f} MB: {shown}")
    return 0
