"""``slahmr-opt run VIDEO --out DIR``: raw video in; tracks, camera, fit, render and GLB out.

Steps, each timed and written under ``DIR``:

1. front end (``DIR/frontend/``): people's 2D keypoints and tracks (``tracks.npz``, person masks
   ``masks.npz``) and the camera (``cameras.npz``, ``cameras.npy`` + ``intrinsics.txt``,
   ``camera_estimate.json``; ``points.npz``, the background points of a translating camera,
   the camera-scale cue of ``init.scale=contact``; ``static.json`` marks a static camera,
   fitted in static mode);
   ``frontend.json`` records the video (size, modification time) and the front-end settings.
   A rerun with the same video and settings reuses them, so trying other solver settings
   costs only the fit;
2. fit (all configured stages) -> ``results.npz`` and its companions (``slahmr_opt.io.results``);
3. ``render.mp4`` (meshes over the video beside a world view) and ``scene.glb``;
4. ``summary.json``: wall time per step and every stage's losses.

Data flows in memory: the fit starts from the front end's tracks and cameras as computed
(``inputs.observations.front_end_observations``; the files are read only when reused), and the
GLB and the render come from the fit's ``Result`` (``results.npz`` is written, not read back).
"""

import json
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from slahmr_opt.config import Config, DataConfig, FrontEndConfig
from slahmr_opt.errors import InputError

if TYPE_CHECKING:
    from slahmr_opt.frontend.camera import CameraEstimate
    from slahmr_opt.inputs.track_data import TrackData

logger = logging.getLogger(__name__)

FRONTEND_VERSION = 2
"""Bumped when the front end's output changes meaning, so old caches are not reused (2: the
camera writes its background points, ``points.npz``, and measures the focal length)."""


@dataclass
class FrontEndSettings:
    """What the front end's output depends on besides the video (part of the cache key).

    The defaults are the config's (``Config.frontend``, ``Config.data``); ``from_config`` reads
    a resolved config."""

    static: bool = FrontEndConfig.static
    """Skip camera estimation: the camera does not move."""
    intrinsics: tuple[float, float, float, float] | None = None
    """``(fx, fy, cx, cy)`` in pixels (``data.intrinsics``); None: the default for the image
    size."""
    max_people: int = FrontEndConfig.max_people
    """Most people tracked at once."""
    min_track_len: int = DataConfig.min_track_len
    """Tracks need more detected frames than this."""

    @classmethod
    def from_config(cls, cfg: Config) -> "FrontEndSettings":
        """The settings of ``cfg.frontend`` and ``cfg.data``."""
        intrinsics = cfg.data.intrinsics
        return cls(
            static=cfg.frontend.static,
            intrinsics=None if intrinsics is None else tuple(intrinsics),
            max_people=cfg.frontend.max_people,
            min_track_len=cfg.data.min_track_len,
        )

    def key(self, video: Path) -> dict:
        stat = video.stat()
        return {
            "version": FRONTEND_VERSION,
            "video": str(video.resolve()),
            "video_bytes": stat.st_size,
            "video_mtime_ns": stat.st_mtime_ns,
            "static": self.static,
            "intrinsics": None if self.intrinsics is None else list(self.intrinsics),
            "max_people": self.max_people,
            "min_track_len": self.min_track_len,
        }


@dataclass
class RunReport:
    """What ``run_video`` did: output paths and wall time per step (seconds)."""

    out: Path
    seconds: dict[str, float] = field(default_factory=dict)
    reused_front_end: bool = False
    stages: list[dict] = field(default_factory=list)
    num_people: int = 0
    num_frames: int = 0
    is_static: bool = False
    people: list[dict] = field(default_factory=list)
    world_scale: float | None = None


def _cached_front_end(folder: Path, key: dict) -> bool:
    meta = folder / "frontend.json"
    if not meta.is_file():
        return False
    try:
        saved = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return saved.get("key") == key and all(
        (folder / name).is_file() for name in ("tracks.npz", "cameras.npz")
    )


def run_front_end(
    video: Path, folder: Path, settings: FrontEndSettings, progress: bool
) -> tuple[dict, "TrackData", "CameraEstimate"]:
    """Tracks and camera of ``video`` into ``folder``.

    Returns:
        ``{step: seconds}``, the tracks and the camera estimate (as written to ``folder``).
    """
    from slahmr_opt.frontend import TRACKS_FILE, detect_people, write_front_end
    from slahmr_opt.frontend.camera import POINTS_FILE, estimate_cameras, write_cameras

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "frontend.json").unlink(missing_ok=True)  # invalid until this run completes
    (folder / "static.json").unlink(missing_ok=True)
    (folder / POINTS_FILE).unlink(missing_ok=True)  # only a translating camera writes points
    seconds = {}
    t0 = time.perf_counter()
    people = detect_people(
        video,
        max_people=settings.max_people,
        min_track_len=settings.min_track_len,
        progress=progress,
    )
    write_front_end(people, folder, overwrite=True)
    seconds["keypoints"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimate = estimate_cameras(
        video,
        masks=people.masks,
        intrinsics=settings.intrinsics,
        static=True if settings.static else "auto",
        progress=progress,
    )
    write_cameras(estimate, folder, overwrite=True)
    if estimate.is_static:
        (folder / "static.json").write_text(json.dumps({"is_static": True}))
    seconds["camera"] = time.perf_counter() - t0
    meta = {"key": settings.key(video), "seconds": seconds, "motion": estimate.motion}
    (folder / "frontend.json").write_text(json.dumps(meta, indent=2))
    return seconds, replace(people.tracks, source=folder / TRACKS_FILE), estimate


def _front_end_observations(folder: Path, tracks, estimate, cfg, settings: FrontEndSettings):
    """The observations of the front end's output in memory; equal to ``_observations`` of
    the files it wrote to ``folder``."""
    from slahmr_opt.inputs.observations import front_end_observations_with

    static = estimate.is_static
    intrinsics = list(settings.intrinsics) if settings.intrinsics else None
    return front_end_observations_with(
        cfg.data,
        tracks,
        None if static else estimate.to_cameras(),
        None if static else estimate.points,
        cameras_path=None if static else folder / "cameras.npz",
        intrinsics=intrinsics,
    )


def _observations(folder: Path, cfg, settings: FrontEndSettings):
    """The observations of the front end's files in ``folder`` (a reused front end)."""
    from slahmr_opt.frontend.camera import POINTS_FILE
    from slahmr_opt.inputs.observations import load_observations_with

    static = (folder / "static.json").is_file()
    cameras = None if static else folder / "cameras.npz"
    points = folder / POINTS_FILE
    intrinsics = list(settings.intrinsics) if settings.intrinsics else None
    return load_observations_with(
        cfg.data,
        folder / "tracks.npz",
        cameras,
        static,
        intrinsics,
        points_path=points if points.is_file() and not static else None,
    )


def run_video(
    video: str | Path,
    out: str | Path,
    cfg,
    settings: FrontEndSettings | None = None,
    progress: bool = True,
    render: bool = True,
) -> RunReport:
    """Front end, fit, render and GLB export of one video (see the module docstring).

    Raises:
        InputError: not a video, no person, tracks too short (the message names the video).
    """
    from slahmr_opt.body import load_body_model
    from slahmr_opt.history import FollowJob
    from slahmr_opt.io.export.glb import export_glb
    from slahmr_opt.io.results import person_summaries, result_arrays, stage_rows, write_result
    from slahmr_opt.solve import solve

    video, out = Path(video), Path(out)
    if not video.is_file():
        raise InputError(video, "video not found")
    settings = settings or FrontEndSettings()
    report = RunReport(out=out)
    folder = out / "frontend"
    key = settings.key(video)
    if _cached_front_end(folder, key):
        logger.info("reusing the front end's tracks and camera in %s", folder)
        report.reused_front_end = True
        obs = _observations(folder, cfg, settings)
    else:
        seconds, tracks, estimate = run_front_end(video, folder, settings, progress)
        report.seconds.update(seconds)
        obs = _front_end_observations(folder, tracks, estimate, cfg, settings)
    report.num_people, report.num_frames = obs.num_people, obs.num_frames
    report.is_static = obs.cameras.is_static
    logger.info("%d people, %d frames, %s camera", obs.num_people, obs.num_frames,
                "static" if obs.cameras.is_static else "moving")  # fmt: skip
    t0 = time.perf_counter()
    follow = FollowJob(out, [(stage.name, stage.solver.iterations) for stage in cfg.stages])
    try:
        result = solve(obs, cfg, checkpoint_dir=out / "checkpoints", progress=progress,
                       on_iteration=follow)
    except BaseException:
        follow.finish("failed")
        raise
    follow.finish()
    results_path = write_result(result, out)
    (out / "inputs.json").write_text(json.dumps({**obs.sources, "video": str(video)}, indent=2))
    report.seconds["fit"] = time.perf_counter() - t0
    report.stages = stage_rows(result)
    arrays = result_arrays(result)
    report.people = person_summaries(arrays)
    scale = float(arrays["world_scale"].reshape(-1)[0])
    report.world_scale = None if math.isnan(scale) else scale  # NaN: not observed
    body_model = load_body_model(cfg.body)
    t0 = time.perf_counter()
    export_glb(result, body_model, out / "scene.glb", overwrite=True)
    report.seconds["export"] = time.perf_counter() - t0
    if render:
        t0 = time.perf_counter()
        _render(result, body_model, video, out / "render.mp4", progress, results_path)
        report.seconds["render"] = time.perf_counter() - t0
    _write_summary(report)
    return report


def _render(result, body_model, video: Path, path: Path, progress: bool, source: Path) -> None:
    from slahmr_opt.files.video import FrameReader
    from slahmr_opt.render.render import RenderOptions, render_result

    with FrameReader(video=video) as reader:
        options = RenderOptions(progress=progress)
        render_result(result, body_model, path, reader, options, source=source)


def _write_summary(report: RunReport) -> None:
    summary = {
        "reused_front_end": report.reused_front_end,
        "people": report.num_people,
        "frames": report.num_frames,
        "static_camera": report.is_static,
        "world_scale": report.world_scale,
        "per_person": report.people,
        "seconds": {k: round(v, 2) for k, v in report.seconds.items()},
        "stages": report.stages,
    }
    (report.out / "summary.json").write_text(json.dumps(summary, indent=2))
