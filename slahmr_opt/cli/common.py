"""What more than one command of ``slahmr-opt`` uses: the fit's arguments and flow, frame ranges.

Command modules import this module and the library, never each other.
"""

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from slahmr_opt.config import Config, GuessSource

logger = logging.getLogger(__name__)

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "example"
"""The bundled example (``tracks.npz``, ``cameras.npz``, ``points.npz``, ``gt.npz``)."""


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``--out``, ``--config``, ``--overwrite``, ``--quiet`` and dotted overrides (fit, demo)."""
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="YAML of overrides (or a name in configs/, e.g. stages_1_2)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    p.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. stages.smooth.solver.kind=lbfgs"
    )


def add_batch_args(p: argparse.ArgumentParser) -> None:
    """``--workers``, ``--ray``, ``--task-cpus``, ``--task-memory-gb``, ``--retries``
    (``experiments.batch.BatchSettings``)."""
    p.add_argument("--workers", type=int, default=1,
                   help="jobs at once: local processes, or the CPUs of --ray local (default 1)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the jobs as Ray tasks: 'local' starts Ray here, anything else "
                   "('auto', 'ray://head:10001') joins that cluster; results come back here")
    p.add_argument("--task-cpus", type=float, default=1.0, help="CPUs per Ray task (default 1)")
    p.add_argument("--task-memory-gb", type=float, default=4.0,
                   help="memory per Ray task, GB (default 4; stage 3 needs about 1 GB per "
                   "1,000 frames and person)")
    p.add_argument("--retries", type=int, default=1,
                   help="attempts after a crash or a lost worker (bad input is not retried)")


def batch_settings(args: argparse.Namespace):
    """The ``BatchSettings`` of ``add_batch_args``' flags, or None for a plain sequential run."""
    from slahmr_opt.experiments.batch import BatchSettings

    if args.workers == 1 and args.ray is None:
        return None
    return BatchSettings(workers=args.workers, ray=args.ray, cpus=args.task_cpus,
                         memory_gb=args.task_memory_gb, retries=args.retries)  # fmt: skip


def parse_frames(text: str) -> slice:
    """``START:STOP[:STEP]`` (Python slice, any part may be empty) or one frame ``N``.

    Raises:
        argparse.ArgumentTypeError: anything else, or a step that is not positive (argparse
            reports it as a usage error).
    """
    try:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) == 1 and parts[0] is not None:
        return slice(parts[0], parts[0] + 1 if parts[0] != -1 else None)
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] is not None and parts[2] <= 0):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not START:STOP[:STEP] (a positive step) or a frame number"
        )
    return slice(*parts)


def fit_files(
    tracks: Path,
    cameras: Path | None,
    static: bool,
    cfg: Config,
    out: Path,
    quiet: bool,
    init: str | None = None,
    points: Path | None = None,
    overwrite: bool = True,
):
    """Read tracks and cameras, fit them, write ``results.npz`` and ``inputs.json`` in ``out``.

    Args:
        tracks: a track file or folder (``inputs.observations``).
        cameras: a camera file, or None with ``static``.
        static: the camera does not move.
        cfg: the resolved config.
        out: output folder (checked by the caller).
        quiet: no progress bars.
        init: ``regressor`` or ``KIND:PATH`` of another method's bodies (``init.external``).
        points: background scene points for the camera scale.
        overwrite: replace an existing ``results.npz`` (checked again when it is written).

    Returns:
        ``(result, path of results.npz)``.

    Raises:
        InputError: a file is missing, malformed or inconsistent with the others.
    """
    from slahmr_opt.files.checks import write_atomic
    from slahmr_opt.history import FollowJob
    from slahmr_opt.inputs.observations import load_observations_with
    from slahmr_opt.io.results import write_result
    from slahmr_opt.solve import solve

    obs = load_observations_with(cfg.data, tracks, cameras, static=static, points_path=points)
    if init == "regressor":
        cfg = replace(cfg, init=replace(cfg.init, guesses=GuessSource.regressor))
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
    follow = FollowJob(out, [(stage.name, stage.solver.iterations) for stage in cfg.stages])
    try:
        result = solve(obs, cfg, checkpoint_dir=out / "checkpoints", progress=not quiet,
                       on_iteration=follow)
    except BaseException:
        follow.finish("failed")
        raise
    follow.finish()
    sources = json.dumps(obs.sources, indent=2).encode()
    write_atomic(out / "inputs.json", lambda f: f.write(sources))
    return result, write_result(result, out, overwrite=overwrite)
