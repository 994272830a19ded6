"""Camera motion of a monocular video from its background: rotation and scale-less translation.

``estimate_cameras`` tracks background corners (people masked out, ``camera_tracks``), decides
whether the camera is static, and otherwise runs keyframe visual odometry with a bundle
adjustment (``camera_vo``), choosing between a pure rotation (pan) and general motion. It
returns camera-to-world poses with the first camera at the origin; translations are in units of
the median background depth (like DROID-SLAM, the scale is unknown: the solver estimates it).
``write_cameras`` writes what the solver reads (``slahmr_opt.inputs.read_cameras``).

Intrinsics: the caller's ``[fx, fy, cx, cy]``, or a default for an unknown camera with the
principal point at the image centre and the focal length of SLAHMR (``(H + W) / 2``, the
default here, as in ``slahmr_opt.inputs.intrinsics``) or of WHAM/TRAM-like methods (the image
diagonal ``sqrt(H^2 + W^2)``). Axes are OpenCV's (x right, y down, z forward).
"""

import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from slahmr_opt.errors import InputError
from slahmr_opt.frontend.camera_geometry import background_motion
from slahmr_opt.frontend.camera_tracks import TrackSettings, track_features
from slahmr_opt.frontend.camera_vo import VOSettings, run_odometry
from slahmr_opt.geometry.camera import invert_pose
from slahmr_opt.inputs.cameras import static_cameras, write_cameras_npz, write_droid_traj
from slahmr_opt.inputs.intrinsics import write_intrinsics_txt
from slahmr_opt.inputs.points import write_points_npz
from slahmr_opt.types import Cameras, ScenePoints

log = logging.getLogger(__name__)

FocalDefault = Literal["slahmr", "diagonal"]
TRAJECTORY_FILE = "cameras.npy"
INTRINSICS_FILE = "intrinsics.txt"
SUMMARY_FILE = "camera_estimate.json"
POINTS_FILE = "points.npz"
MIN_FRAMES = 2


@dataclass
class CameraSettings:
    """Settings of ``estimate_cameras``."""

    tracking: TrackSettings = field(default_factory=TrackSettings)
    """Corner detection and Lucas-Kanade tracking."""
    odometry: VOSettings = field(default_factory=VOSettings)
    """Keyframes, model selection and bundle adjustment."""
    static_threshold: float = 0.025
    """Static camera: the background never moves further than this fraction of the image
    diagonal from where it was in the first frame (0.025: about 2 degrees of pan for a 16:9
    frame at the default focal length; a tripod that creeps or a steady hand stays below)."""
    default_focal: FocalDefault = "slahmr"
    """Focal length when no intrinsics are given: ``slahmr`` = (H + W) / 2, ``diagonal`` =
    sqrt(H^2 + W^2)."""
    estimate_focal: bool = True
    """Without given intrinsics, measure the focal length of a translating camera from its
    background tracks (``camera_vo.focal_profile``) and use it where the measurement is clear;
    otherwise (static, pan, unclear) keep ``default_focal``."""
    min_tracks: int = 20
    """A video with fewer background tracks in most frames is reported as static, with a
    warning (nothing to measure motion by)."""


@dataclass
class CameraDiagnostics:
    """What the estimate rests on, per frame and overall.

    Attributes:
        num_tracks: (T,) background tracks per frame.
        inliers: (T,) tracks that agree with each frame's pose (0: interpolated).
        flow_px: (T,) median frame-to-frame background motion, tracking pixels.
        moved_px: (T,) background displacement since frame 0, tracking pixels.
        tracking_scale: tracking pixels per image pixel.
        keyframes: frame indices of the keyframes.
        ba_rms_px: reprojection RMS of the bundle adjustment, tracking pixels.
        focal: where the focal length came from: ``given``, ``default`` or ``estimated``.
        focal_factor, focal_range: the measured focal length over the default and the range of
            factors that fit about as well (``camera_vo.FocalEstimate``); 1 and [] when not
            measured.
        seconds: wall time of the estimate.
        warnings: problems worth a look (also logged).
    """

    num_tracks: np.ndarray
    inliers: np.ndarray
    flow_px: np.ndarray
    moved_px: np.ndarray
    tracking_scale: float
    keyframes: list[int] = field(default_factory=list)
    ba_rms_px: float = 0.0
    focal: str = "given"
    focal_factor: float = 1.0
    focal_range: list[float] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


@dataclass
class CameraEstimate:
    """Estimated cameras of a video.

    Attributes:
        R_c2w: (T, 3, 3) camera-to-world rotations, first frame identity.
        t_c2w: (T, 3) camera centres, first at the origin, in units of the median background
            depth (zero for a static camera or a pure rotation).
        intrins: (4,) ``[fx, fy, cx, cy]`` in image pixels.
        image_size: ``(height, width)``.
        motion: ``static``, ``rotation`` (pan/tilt without translation) or ``general``.
        diagnostics: per-frame evidence and timings.
        points: the triangulated background points in the units of ``t_c2w`` with their
            observing frames (the camera-scale cue of ``init.scale=contact``); None unless the
            camera translates.
    """

    R_c2w: np.ndarray
    t_c2w: np.ndarray
    intrins: np.ndarray
    image_size: tuple[int, int]
    motion: str
    diagnostics: CameraDiagnostics
    points: ScenePoints | None = None

    @property
    def is_static(self) -> bool:
        return self.motion == "static"

    @property
    def num_frames(self) -> int:
        return len(self.R_c2w)

    def to_cameras(self) -> Cameras:
        """The solver's cameras: ``static_cameras`` for a static camera (``is_static=True``),
        else world-to-camera extrinsics in the estimate's units."""
        intrins = np.tile(self.intrins, (self.num_frames, 1))
        if self.is_static:
            return static_cameras(self.num_frames, self.image_size, intrins)
        R_w2c, t_w2c = invert_pose(self.R_c2w, self.t_c2w)
        return Cameras(
            R_w2c=torch.as_tensor(R_w2c, dtype=torch.float32),
            t_w2c=torch.as_tensor(t_w2c, dtype=torch.float32),
            intrins=torch.as_tensor(intrins, dtype=torch.float32),
            image_size=self.image_size,
        )


def default_intrinsics(image_size: tuple[int, int], focal: FocalDefault = "slahmr") -> np.ndarray:
    """``[f, f, W/2, H/2]`` for an unknown camera of ``image_size`` ``(H, W)``.

    ``focal``: ``slahmr`` -> ``f = (H + W) / 2`` (SLAHMR); ``diagonal`` -> ``f = sqrt(H^2 + W^2)``
    (the image diagonal, as WHAM/TRAM-like methods assume).
    """
    height, width = image_size
    if focal == "slahmr":
        f = 0.5 * (height + width)
    elif focal == "diagonal":
        f = float(np.hypot(height, width))
    else:
        raise ValueError(f"default focal must be 'slahmr' or 'diagonal', got {focal!r}")
    return np.array([f, f, width / 2, height / 2], dtype=np.float64)


def parse_intrinsics(text: str) -> np.ndarray:
    """``"fx,fy,cx,cy"`` (the ``--intrinsics`` option) -> (4,) float64.

    Raises:
        InputError: not four numbers, or a focal length that is not positive.
    """
    try:
        values = np.array([float(v) for v in text.replace(" ", "").split(",")])
    except ValueError:
        raise InputError(None, f"intrinsics must be 'fx,fy,cx,cy' numbers, got {text!r}") from None
    if values.shape != (4,) or not np.isfinite(values).all() or (values[:2] <= 0).any():
        raise InputError(None, f"intrinsics must be 'fx,fy,cx,cy' with fx, fy > 0, got {text!r}")
    return values


def _frame_source(frames) -> tuple[Iterator[np.ndarray], tuple[int, int], int | None, object]:
    """An iterator over RGB frames, their size, their count if known, and a closer."""
    if isinstance(frames, str | Path):
        # the front end's decoder: frame t here is frame t of its person masks
        from slahmr_opt.frontend.video import VideoFrames

        video = VideoFrames(frames)
        size = video.info.size
        blank = np.zeros(size + (3,), np.uint8)  # a frame that did not decode: no tracks
        source = (blank if frame is None else frame for _, frame in video)
        return source, size, video.info.num_frames or None, video
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (T, H, W, 3) uint8, got shape {frames.shape}")
        return iter(frames), frames.shape[1:3], len(frames), None
    frames = iter(frames)
    try:
        first = next(frames)
    except StopIteration:
        raise ValueError("no frames") from None
    first = np.asarray(first)
    if first.ndim != 3 or first.shape[-1] != 3:
        raise ValueError(f"frames must be (H, W, 3) uint8, got shape {first.shape}")

    def chain():
        yield first
        yield from frames

    total = None
    return chain(), first.shape[:2], total, None


def estimate_cameras(
    frames: str | Path | np.ndarray | Iterable[np.ndarray],
    masks: np.ndarray | Sequence[np.ndarray] | None = None,
    intrinsics: Sequence[float] | np.ndarray | None = None,
    static: bool | Literal["auto"] = "auto",
    settings: CameraSettings | None = None,
    progress: bool = True,
) -> CameraEstimate:
    """Estimate per-frame camera rotation and scale-less translation from the background.

    Args:
        frames: a video path (decoded like the person front end, ``frontend.video``, so frame t
            is frame t of its masks), (T, H, W, 3) uint8 RGB, or an iterable of (H, W, 3) uint8
            RGB frames.
        masks: (T, h, w) bool person masks (True = person), any size with the frames' aspect
            ratio (resized), a ``frontend.masks.PersonMasks``, or None.
        intrinsics: (4,) ``[fx, fy, cx, cy]`` in image pixels; None for the default
            (``settings.default_focal``).
        static: ``"auto"`` detects a static camera; True forces one; False always estimates
            motion.
        settings: None for the defaults.
        progress: show a progress bar while tracking.

    Returns:
        The estimate; ``motion == "static"`` means identity poses and the solver's static mode.

    Raises:
        ValueError: fewer than two frames, frames of the wrong shape, masks of the wrong count.
        InputError: an unreadable video.
    """
    settings = settings or CameraSettings()
    start = time.perf_counter()
    masks = getattr(masks, "masks", masks)  # a frontend.masks.PersonMasks, or the array
    if masks is not None and isinstance(frames, np.ndarray) and len(masks) != len(frames):
        raise ValueError(f"{len(masks)} masks for {len(frames)} frames")
    tracks, size = _track(frames, masks, settings.tracking, progress)
    intrins = _resolve_intrinsics(intrinsics, size, settings.default_focal)
    num = tracks.num_frames
    moved, flow = background_motion(tracks)
    diag = CameraDiagnostics(
        num_tracks=np.array([len(i) for i in tracks.ids]),
        inliers=np.zeros(num, int),
        flow_px=flow,
        moved_px=moved,
        tracking_scale=tracks.scale,
        focal="given" if intrinsics is not None else "default",
    )
    motion = _static_decision(static, tracks, moved, settings, diag)
    R_c2w, t_c2w = np.tile(np.eye(3), (num, 1, 1)), np.zeros((num, 3))
    points = None
    if motion != "static":
        _warn_gaps(tracks, settings.odometry.min_points, diag)
        measure = intrinsics is None and settings.estimate_focal
        result = run_odometry(tracks, intrins, settings.odometry, profile_focal=measure)
        if result.focal is not None:
            intrins = _use_focal(result.focal, intrins, diag)
            if diag.focal == "estimated":
                result = run_odometry(tracks, intrins, settings.odometry)
        motion = "general" if result.translating else "rotation"
        R_c2w, t_c2w = invert_pose(result.R, result.t)
        diag.inliers, diag.keyframes = result.inliers, result.keyframes
        diag.ba_rms_px = result.ba_rms_px
        if result.translating and len(result.points):
            points = ScenePoints(
                points=torch.as_tensor(result.points, dtype=torch.float64),
                frames=torch.as_tensor(result.point_frames, dtype=torch.int64),
            )
        _warn_weak_frames(result.inliers, result.keyframes, diag)
    diag.seconds = time.perf_counter() - start
    log.info(
        "camera: %s motion over %d frames in %.1f s (%.1f ms/frame)",
        motion, num, diag.seconds, 1000 * diag.seconds / num,
    )  # fmt: skip
    return CameraEstimate(R_c2w, t_c2w, intrins, tuple(size), motion, diag, points)


def _track(frames, masks, settings: TrackSettings, progress: bool):
    """Background tracks of the frames and the frame size; checks the counts."""
    from tqdm import tqdm

    source, size, total, closer = _frame_source(frames)
    bar = tqdm(source, total=total, desc="camera tracks", unit="frame", disable=not progress)
    try:
        tracks = track_features(bar, size, iter(masks) if masks is not None else None, settings)
    finally:
        bar.close()
        if closer is not None:
            closer.close()
    if tracks.num_frames < MIN_FRAMES:
        raise ValueError(
            f"camera estimation needs at least {MIN_FRAMES} frames, got {tracks.num_frames}"
        )
    if masks is not None and len(masks) != tracks.num_frames:
        raise ValueError(f"{len(masks)} masks for {tracks.num_frames} frames")
    return tracks, size


def _resolve_intrinsics(intrinsics, size, focal: FocalDefault) -> np.ndarray:
    if intrinsics is None:
        return default_intrinsics(size, focal)
    values = np.asarray(intrinsics, dtype=np.float64).reshape(-1)
    if values.shape != (4,) or not np.isfinite(values).all() or (values[:2] <= 0).any():
        raise ValueError(f"intrinsics must be [fx, fy, cx, cy] with fx, fy > 0, got {intrinsics}")
    return values


def _use_focal(focal, intrins: np.ndarray, diag: CameraDiagnostics) -> np.ndarray:
    """The intrinsics with the measured focal length where the measurement is clear (logged)."""
    diag.focal_factor, diag.focal_range = focal.factor, [focal.low, focal.high]
    f = focal.factor * intrins[0]
    if not focal.accepted:
        log.info("camera: the focal length is not clear from the background (best %.0f px, "
                 "fits as well from %.2fx to %.2fx the default); keeping the default %.0f px",
                 f, focal.low, focal.high, intrins[0])  # fmt: skip
        return intrins
    log.info("camera: focal length %.0f px from the background tracks (%.2fx the default; "
             "fits as well from %.2fx to %.2fx); --intrinsics overrides it",
             f, focal.factor, focal.low, focal.high)  # fmt: skip
    diag.focal = "estimated"
    return intrins * np.array([focal.factor, focal.factor, 1.0, 1.0])


def _static_decision(static, tracks, moved, settings: CameraSettings, diag) -> str:
    """``static`` or ``moving`` (refined later into rotation / general)."""
    if static is True:
        return "static"
    counts = diag.num_tracks
    if np.median(counts) < settings.min_tracks:
        message = (
            f"only {int(np.median(counts))} background tracks per frame (blank or textureless "
            "video?): cannot measure camera motion, assuming a static camera"
        )
        log.warning(message)
        diag.warnings.append(message)
        return "static"
    if static is False:
        return "moving"
    height, width = tracks.size
    limit = settings.static_threshold * np.hypot(height, width)
    peak = float(np.max(moved))
    log.info("background moved at most %.2f px (static below %.2f px)", peak, limit)
    return "static" if peak < limit else "moving"


def _warn_gaps(tracks, min_points: int, diag: CameraDiagnostics) -> None:
    """Warn about breaks in the tracks and stretches of frames without enough of them."""
    breaks = [t for t, lost in enumerate(tracks.lost) if lost]
    if breaks:
        message = (
            f"background tracks broke off at frame(s) {breaks[:10]} (a cut, or a long blank or "
            "blurred stretch): the camera is held still across each break and the translation "
            "scale after it is a guess"
        )
        log.warning(message)
        diag.warnings.append(message)
    blind = diag.num_tracks < min_points
    if blind.any():
        message = f"{int(blind.sum())} frames with fewer than {min_points} background tracks: "
        message += "their poses are interpolated"
        log.warning(message)
        diag.warnings.append(message)


def _warn_weak_frames(inliers: np.ndarray, keyframes: list[int], diag) -> None:
    weak = np.flatnonzero(inliers == 0)
    weak = weak[~np.isin(weak, keyframes)]
    if len(weak) > 0.2 * len(inliers):
        message = f"{len(weak)} of {len(inliers)} frames had too few tracks and were interpolated"
        log.warning(message)
        diag.warnings.append(message)


def write_cameras(estimate: CameraEstimate, out_dir: str | Path, overwrite: bool = False) -> dict:
    """Write the estimate in the formats the solver reads.

    Files in ``out_dir``: ``cameras.npy`` (DROID-SLAM (T, 7) camera-to-world
    ``tx ty tz qx qy qz qw``), ``intrinsics.txt`` (``fx fy cx cy W H``), ``cameras.npz``
    (SLAHMR's, readable as ``read_cameras(out_dir)``) and ``camera_estimate.json`` (motion kind,
    ``is_static`` and diagnostics), and ``points.npz`` (the background points,
    ``slahmr_opt.inputs.read_points``) when the camera translates. A static camera is written as
    identity poses; use the solver's static mode for it (``is_static`` in the json,
    ``CameraEstimate.to_cameras``).

    Returns:
        Paths by name: ``trajectory``, ``intrinsics``, ``npz``, ``summary`` and ``points`` (when
        written).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cameras = estimate.to_cameras()
    paths = {
        "trajectory": write_droid_traj(out / TRAJECTORY_FILE, cameras, overwrite),
        "intrinsics": write_intrinsics_txt(
            out / INTRINSICS_FILE, estimate.intrins, estimate.image_size, overwrite
        ),
        "npz": write_cameras_npz(out / "cameras.npz", cameras, overwrite),
    }
    if estimate.points is not None:
        paths["points"] = write_points_npz(out / POINTS_FILE, estimate.points, overwrite)
    summary = {
        "motion": estimate.motion,
        "is_static": estimate.is_static,
        "num_frames": estimate.num_frames,
        "image_size": list(estimate.image_size),
        "intrinsics": estimate.intrins.tolist(),
        "translation_unit": "median background depth",
        "num_points": 0 if estimate.points is None else estimate.points.num_points,
        "diagnostics": {
            k: (v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in asdict(estimate.diagnostics).items()
        },
    }
    path = out / SUMMARY_FILE
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True)")
    path.write_text(json.dumps(summary, indent=1))
    paths["summary"] = path
    return paths
