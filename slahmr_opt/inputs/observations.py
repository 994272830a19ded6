"""``load_observations``: person tracks + cameras -> one validated ``Observations``.

Frame alignment: frame ``t`` of the tracks is frame ``t`` of the camera file (see
``TrackData.absolute_frames``). The camera file may cover more frames than the tracks; the result
is cropped to the tracked window ``[first detection, last detection]`` over the selected tracks, as
SLAHMR does, and ``Observations.frame_offset`` is the video frame index of the window's first
frame (so output frame ``i`` is video frame ``frame_offset + i``). ``sources`` holds
``"tracks"`` and ``"cameras"`` (a path, or ``"static"``), and ``"frame_offset"`` again as text
for provenance (``inputs.json``).

``front_end_observations`` gives the same ``Observations`` from the video front end's tracks
and cameras held in memory, without reading back the files the front end writes.
"""

import logging
import math
from dataclasses import replace
from pathlib import Path

import torch

from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.files.checks import MAX_FPS
from slahmr_opt.inputs.cameras import (
    cameras_from_npz_arrays,
    cameras_npz_arrays,
    read_cameras,
    static_cameras,
)
from slahmr_opt.inputs.intrinsics import IntrinsicsSource
from slahmr_opt.inputs.points import points_from_npz_arrays, points_npz_arrays, read_points
from slahmr_opt.inputs.track_data import (
    MAX_NUM_TRACKS,
    MIN_KEYP_CONF,
    MIN_TRACK_LEN,
    TrackData,
    TrackSelection,
    check_keypoint_range,
)
from slahmr_opt.inputs.tracks import prepare_tracks, read_tracks
from slahmr_opt.types import Cameras, Observations, ScenePoints

log = logging.getLogger(__name__)


def load_observations(
    tracks_path: str | Path,
    cameras_path: str | Path | None = None,
    static: bool = False,
    image_size: tuple[int, int] | None = None,
    intrinsics: IntrinsicsSource | None = None,
    fps: float | None = None,
    track_selection: TrackSelection = "all",
    min_conf: float = MIN_KEYP_CONF,
    min_track_len: int = MIN_TRACK_LEN,
    max_tracks: int = MAX_NUM_TRACKS,
    shot: int = 0,
    points_path: str | Path | None = None,
) -> Observations:
    """Read tracks and cameras, check that they agree, and crop to the tracked window.

    Args:
        tracks_path: SLAHMR track folder, PHALP output pickle (``.pkl``) or tracks ``.npz``.
        cameras_path: DROID-SLAM trajectory, ``cameras.npz`` (or its folder) or TUM trajectory;
            None together with ``static=True`` for a static camera.
        static: use a static camera (identity rotation, zero translation).
        image_size: ``(height, width)`` in pixels; else taken from the tracks or camera file.
        intrinsics: ``intrinsics.txt`` path or ``[fx, fy, cx, cy]`` values (4,) / (T, 4) over the
            camera file's frames; overrides the camera file's intrinsics.
        fps: frames per second, used when the tracks file records none.
        track_selection: ``"all"``, ``"longest-N"`` or a list of track ids.
        min_conf: keypoint confidences below this become 0.
        min_track_len: tracks need more detected frames than this (``"all"``, ``"longest-N"``).
        max_tracks: most tracks kept by ``"all"``.
        shot: PHALP pickles: the shot to fit (0 = first); its frames keep their video index,
            and the camera file covers the whole video or exactly this shot (SLAHMR's per-shot
            SLAM run).
        points_path: background scene points in the cameras' SLAM world (``inputs.points``);
            their frames are video frames of the camera file and shift with the crop.

    Returns:
        Observations over the tracked window, with P selected tracks and T frames.

    Raises:
        InputError: a file is missing or malformed, the files disagree (the camera file has fewer
            frames than the tracks), or fps / image size are unknown.
        ConfigError: both or neither of ``cameras_path`` and ``static`` are given, or ``shot``
            is not 0 for tracks without shots.
    """
    if static == (cameras_path is not None):
        raise ConfigError("give exactly one camera source: cameras_path=... or static=True")
    tracks = read_tracks(
        tracks_path, track_selection, min_track_len, max_tracks, min_conf, shot=shot
    )

    def cameras(size: tuple[int, int] | None) -> Cameras:
        return read_cameras(cameras_path, image_size=size, intrinsics=intrinsics)

    def points(num_frames: int) -> ScenePoints:
        return read_points(points_path, num_frames=num_frames)

    return _observations(
        tracks,
        None if static else cameras,
        cameras_path,
        image_size,
        intrinsics,
        fps,
        None if points_path is None else points,
    )


def front_end_observations(
    tracks: TrackData,
    cameras: Cameras | None,
    points: ScenePoints | None = None,
    cameras_path: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    intrinsics: IntrinsicsSource | None = None,
    fps: float | None = None,
    track_selection: TrackSelection = "all",
    min_conf: float = MIN_KEYP_CONF,
    min_track_len: int = MIN_TRACK_LEN,
    max_tracks: int = MAX_NUM_TRACKS,
) -> Observations:
    """``load_observations`` of tracks, cameras and points held in memory: the same
    ``Observations`` as from the tracks ``.npz``, ``cameras.npz`` and points ``.npz`` they are
    written to (cameras and points go through the same file arrays, float32 cameras, the same
    intrinsics overrides and checks), without the files.

    Args:
        tracks: every track, uncleaned (the front end's ``TrackData``; ``tracks.source`` is
            recorded as ``sources["tracks"]``).
        cameras: the cameras, or None for a static camera.
        points: background scene points in the cameras' SLAM world, or None.
        cameras_path: where the cameras are written (``sources["cameras"]``, messages).
        image_size, intrinsics, fps, track_selection, min_conf, min_track_len, max_tracks: as
            for ``load_observations``.
    """
    tracks = prepare_tracks(tracks, track_selection, min_track_len, max_tracks, min_conf)
    path = None if cameras_path is None else Path(cameras_path)

    def camera_source(size: tuple[int, int] | None) -> Cameras:
        return cameras_from_npz_arrays(cameras_npz_arrays(cameras), path, size, intrinsics)

    def point_source(num_frames: int) -> ScenePoints:
        return points_from_npz_arrays(points_npz_arrays(points), None, num_frames)

    return _observations(
        tracks,
        None if cameras is None else camera_source,
        cameras_path,
        image_size,
        intrinsics,
        fps,
        None if points is None else point_source,
    )


def _observations(
    tracks: TrackData,
    read_cams,
    cameras_path: str | Path | None,
    image_size: tuple[int, int] | None,
    intrinsics: IntrinsicsSource | None,
    fps: float | None,
    read_pts,
) -> Observations:
    """Observations of cleaned, selected ``tracks``: ``read_cams(image_size)`` gives the
    cameras (None: static), ``read_pts(num_frames)`` the scene points (None: none); aligned
    with the tracks and cropped to the tracked window."""
    static = read_cams is None
    fps = _resolve_fps(tracks, fps)
    if image_size is None:
        image_size = tracks.image_size
    first = 0
    if static:
        if image_size is None:
            raise InputError(
                tracks.source,
                "a static camera needs the image size: pass image_size=(H, W) or "
                "store 'image_size' in the tracks .npz",
            )
        cameras = static_cameras(tracks.num_frames, image_size, intrinsics)
    else:
        cameras = read_cams(image_size)
        tracks, first = _align_shot(tracks, cameras, Path(cameras_path))
        _check_frames(tracks, cameras, Path(cameras_path))
    check_keypoint_range(tracks, cameras.image_size)
    points = None if read_pts is None else read_pts(cameras.num_frames)
    start, stop = _tracked_window(tracks)
    tracks, cameras = tracks.crop(start, stop), cameras.slice(start, stop)
    if points is not None and points.frames is not None:
        points = replace(points, frames=points.frames - start)
    log.info(
        "observations: %d people, frames %d..%d (%d frames) at %g fps",
        tracks.num_people,
        start,
        stop - 1,
        stop - start,
        fps,
    )
    return Observations(
        kp2d=tracks.kp2d,
        kp_format=tracks.kp_format,
        track_mask=tracks.track_mask,
        vis_mask=tracks.vis_mask,
        cameras=cameras,
        fps=fps,
        track_ids=list(tracks.track_ids),
        bbox=tracks.bbox,
        smpl_guess=tracks.smpl_guess,
        points=points,
        sources={
            "tracks": str(tracks.source),
            "cameras": "static" if static else str(cameras_path),
            "frame_offset": str(first + start),
        },
        frame_offset=first + start,
    )


def _resolve_fps(tracks: TrackData, fps: float | None) -> float:
    """fps from the tracks file, else the argument; never a silent default."""
    if fps is not None:
        try:
            ok = math.isfinite(float(fps)) and 0 < float(fps) <= MAX_FPS
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"fps must be a number in (0, {MAX_FPS:g}], got {fps!r}")
    if tracks.fps is not None:
        if fps is not None and abs(fps - tracks.fps) > 1e-6:
            log.warning("%s records fps=%g; ignoring fps=%g", tracks.source, tracks.fps, fps)
        return tracks.fps
    if fps is None:
        raise InputError(
            tracks.source, "no fps recorded in the tracks input; pass fps=... (config data.fps)"
        )
    return float(fps)


def _align_shot(tracks: TrackData, cameras: Cameras, path: Path) -> tuple[TrackData, int]:
    """Tracks from a later shot against a camera file made for that shot alone.

    SLAHMR runs SLAM per shot, so its camera file for shot k starts at the shot's first frame. A
    camera file exactly as long as the shot is taken to be such a file (one covering the whole
    video is longer: it reaches at least the shot's last frame); the tracks are then cut to the
    shot. Returns the tracks and the video frame of their frame 0.
    """
    first = tracks.first_frame
    if first == 0 or cameras.num_frames != tracks.num_frames - first:
        return tracks, 0
    log.info(
        "%s: %d frames, the length of the shot: camera frame 0 is video frame %d",
        path,
        cameras.num_frames,
        first,
    )
    return replace(tracks.crop(first, tracks.num_frames), first_frame=0), first


def _check_frames(tracks: TrackData, cameras: Cameras, cameras_path: Path) -> None:
    """The camera file must cover every track frame, and frame indices must be unambiguous."""
    if cameras.num_frames < tracks.num_frames:
        raise InputError(
            cameras_path,
            f"has {cameras.num_frames} camera frames but the tracks in "
            f"{tracks.source} span {tracks.num_frames} frames",
        )
    if not tracks.absolute_frames and cameras.num_frames != tracks.num_frames:
        raise InputError(
            cameras_path,
            f"has {cameras.num_frames} camera frames but the tracks in "
            f"{tracks.source} have {tracks.num_frames} non-integer frame names, which cannot be "
            "placed among them; name frames by their integer index (000012)",
        )


def _tracked_window(tracks: TrackData) -> tuple[int, int]:
    """[earliest first detection, latest last detection + 1) over all tracks."""
    seen = torch.nonzero(tracks.vis_mask.any(dim=0)).flatten()
    return int(seen[0]), int(seen[-1]) + 1


def load_observations_with(
    data,
    tracks_path: str | Path,
    cameras_path: str | Path | None = None,
    static: bool = False,
    intrinsics: IntrinsicsSource | None = None,
    points_path: str | Path | None = None,
) -> Observations:
    """``load_observations`` with the options of a config's ``data:`` section.

    Args:
        data: ``Config.data`` (track ids as ``all``, ``longest-N`` or ``"001,003"``).
        intrinsics: overrides ``data.intrinsics``.
        points_path: the scene points file (``load_observations``).
    """
    return load_observations(
        tracks_path,
        cameras_path,
        static=static,
        shot=data.shot,
        points_path=points_path,
        **_data_options(data, intrinsics),
    )


def front_end_observations_with(
    data,
    tracks: TrackData,
    cameras: Cameras | None,
    points: ScenePoints | None = None,
    cameras_path: str | Path | None = None,
    intrinsics: IntrinsicsSource | None = None,
) -> Observations:
    """``front_end_observations`` with the options of a config's ``data:`` section (see
    ``load_observations_with``).

    Raises:
        ConfigError: ``data.shot`` is not 0 (only PHALP pickles have shots), or a bad option.
    """
    if data.shot != 0:
        raise ConfigError(
            f"data.shot={data.shot}: only PHALP pickles have shots ({tracks.source} has none)"
        )
    return front_end_observations(
        tracks, cameras, points, cameras_path, **_data_options(data, intrinsics)
    )


def _data_options(data, intrinsics: IntrinsicsSource | None) -> dict:
    """``load_observations`` arguments from ``Config.data``; ``intrinsics`` overrides its own."""
    ids = data.track_ids
    selection = (
        ids if ids == "all" or ids.startswith("longest") else [s.strip() for s in ids.split(",")]
    )
    return {
        "image_size": tuple(data.image_size) if data.image_size else None,
        "intrinsics": data.intrinsics if intrinsics is None else intrinsics,
        "fps": data.fps,
        "track_selection": selection,
        "min_conf": data.min_conf,
        "min_track_len": data.min_track_len,
    }
